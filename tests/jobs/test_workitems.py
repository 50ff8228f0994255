"""One mechanism for every kind of queued work (jobs.workitems.WorkKind): render executions,
publications and webhook deliveries are claimed, woken and swept the same way."""

import uuid
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone
from django_q.models import OrmQ, Schedule

from jobs.models import ExecutionStatus, Publication, PublicationStatus, Webhook, WebhookDelivery
from jobs.publishing.publications import PUBLICATIONS
from jobs.render.queue import RENDERS
from jobs.webhooks.delivery import DELIVERIES, delivery_send
from jobs.workitems import WorkKind
from tests.factories import make_account, make_execution, make_job, make_user


def _render(owner) -> int:
    return make_execution(make_job(owner=owner), status=ExecutionStatus.PENDING).pk


def _publication(owner) -> int:
    job = make_job(owner=owner, account=make_account(owner=owner))
    execution = make_execution(job, status=ExecutionStatus.SUCCESS)
    publication = Publication.objects.create(
        job=job, execution=execution, account=job.account, title="t", category_id="22", privacy="private"
    )
    return publication.pk


def _delivery(owner) -> int:
    webhook = Webhook.objects.create(
        owner=owner, team=owner.personal_team, url="https://example.com/hook", secret="whsec_x"
    )
    delivery = WebhookDelivery.objects.create(
        webhook=webhook, event_id=uuid.uuid4(), kind="render.done", payload={}, next_attempt_at=timezone.now()
    )
    return delivery.pk


KINDS = {
    "render": (RENDERS, _render),
    "publication": (PUBLICATIONS, _publication),
    "delivery": (DELIVERIES, _delivery),
}


@pytest.fixture(params=sorted(KINDS))
def kind_and_row(request, db) -> tuple[WorkKind, int]:
    kind, make = KINDS[request.param]
    return kind, make(make_user())


def _queued(kind: WorkKind) -> list[tuple]:
    return [tuple(task.task["args"]) for task in OrmQ.objects.all() if task.func() == kind.task]


def test_the_three_kinds_of_queued_work_are_one_mechanism():
    assert {type(kind) for kind, _make in KINDS.values()} == {WorkKind}
    assert [kind.task for kind, _make in KINDS.values()] == [
        "jobs.tasks.run_next_execution",
        "jobs.tasks.run_publication",
        "jobs.tasks.webhook_send",
    ]


def test_of_two_claimers_of_a_due_row_only_one_wins(kind_and_row):
    kind, pk = kind_and_row
    changes = {
        RENDERS: {"status": ExecutionStatus.RUNNING, "heartbeat_at": timezone.now()},
        PUBLICATIONS: {"status": PublicationStatus.RUNNING, "updated_at": timezone.now()},
        DELIVERIES: {"next_attempt_at": timezone.now() + timedelta(minutes=5)},
    }[kind]
    assert kind.claim(pk, **changes) is True
    assert kind.claim(pk, **changes) is False
    assert not kind.claimable().filter(pk=pk).exists()


def test_a_claimed_row_whose_worker_went_silent_is_claimable_again(kind_and_row):
    kind, pk = kind_and_row
    long_ago = timezone.now() - timedelta(days=1)
    silent = {
        RENDERS: {"status": ExecutionStatus.RUNNING, "heartbeat_at": long_ago},
        PUBLICATIONS: {"status": PublicationStatus.RUNNING},
        DELIVERIES: {"next_attempt_at": long_ago},  # the sender's lease ran out
    }[kind]
    kind.model.objects.filter(pk=pk).update(**silent)
    if kind is PUBLICATIONS:  # updated_at is auto_now: set it past the stale time by hand
        kind.model.objects.filter(pk=pk).update(updated_at=long_ago)
    assert kind.claimable().filter(pk=pk).exists()


def test_a_wake_up_for_later_is_a_one_off_schedule_of_the_kinds_task(kind_and_row, settings):
    kind, pk = kind_and_row
    when = timezone.now() + timedelta(minutes=7)
    kind.wake(pk, when=when)
    [schedule] = Schedule.objects.filter(func=kind.task)
    assert schedule.schedule_type == Schedule.ONCE and schedule.next_run == when
    assert schedule.cluster == getattr(settings, kind.cluster_setting)
    assert schedule.args == (repr((pk,)) if kind.task_takes_id else None)


def test_a_wake_up_the_broker_refuses_loses_nothing_the_sweep_wakes_the_row(kind_and_row, caplog):
    kind, pk = kind_and_row
    with mock.patch("django_q.tasks.async_task", side_effect=ConnectionError("broker down")):
        kind.wake(pk)
    assert not _queued(kind) and "the sweep will wake it" in caplog.text
    assert kind.sweep() == 1
    assert _queued(kind) == ([(pk,)] if kind.task_takes_id else [()])


def test_a_failed_webhook_send_is_tried_again_at_its_back_off_time_not_at_the_next_sweep(db, settings):
    settings.WEBHOOK_RETRY_BACKOFF_S = 30
    pk = _delivery(make_user())
    with mock.patch("jobs.webhooks.delivery._post", return_value=500):
        with mock.patch("django.db.transaction.on_commit", side_effect=lambda func, **kw: func()):
            delivery = delivery_send(delivery_id=pk)
    assert delivery.attempts == 1 and delivery.status == "pending"
    [retry] = Schedule.objects.filter(func=DELIVERIES.task)
    assert retry.next_run == delivery.next_attempt_at and retry.args == repr((pk,))
