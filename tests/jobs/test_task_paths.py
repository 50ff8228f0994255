"""Every django-q2 entry point lives in jobs.tasks; schedules and queued tasks stored before the
move are pointed there by a migration, so an upgrade loses none of them."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils.module_loading import import_string
from django_q.brokers import get_broker
from django_q.models import OrmQ, Schedule
from django_q.signing import SignedPackage
from django_q.tasks import async_task

from jobs.maintenance.schedules import SCHEDULES, schedules_ensure
from jobs.render.queue import RENDER_TASK

BEFORE = [("jobs", "0008_cluster_cache_table")]
AFTER = [("jobs", "0009_task_paths")]


def migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


@pytest.fixture
def latest_schema_after():
    """The test moves the schema back and forth: every later test gets it whole again."""
    yield
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_every_schedule_and_task_path_names_a_function_in_jobs_tasks(db):
    paths = [func for func, _type, _minutes in SCHEDULES.values()] + [RENDER_TASK]
    paths += [schedule.func for schedule in schedules_ensure()]
    assert {path.rsplit(".", 1)[0] for path in paths} == {"jobs.tasks"}
    for path in paths:
        assert callable(import_string(path))


@pytest.mark.django_db(transaction=True)
def test_schedules_and_queued_tasks_stored_before_the_move_are_pointed_at_jobs_tasks(latest_schema_after):
    migrate(BEFORE)
    old_schedule = Schedule.objects.create(
        name="an operator's own", func="jobs.maintenance.task_cleanup_storage", schedule_type=Schedule.HOURLY
    )
    task_id = async_task("jobs.tasks.task_reset_stuck", broker=get_broker())
    queued = OrmQ.objects.get()
    task = SignedPackage.loads(queued.payload)
    task["func"] = "jobs.maintenance.task_reset_stuck"  # as the previous release queued it
    queued.payload = SignedPackage.dumps(task)
    queued.save()

    migrate(AFTER)

    old_schedule.refresh_from_db()
    assert old_schedule.func == "jobs.tasks.task_cleanup_storage"
    moved = SignedPackage.loads(OrmQ.objects.get().payload)
    assert (moved["id"], moved["func"]) == (task_id, "jobs.tasks.task_reset_stuck")
    assert callable(import_string(moved["func"]))
