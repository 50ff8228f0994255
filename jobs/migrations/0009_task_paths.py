"""The django-q2 entry points moved to jobs.tasks (every task there, and only there): stored
schedules and tasks still waiting in the broker are pointed at the new paths, so none fails to
import after the upgrade."""

from django.db import migrations

MOVED = {
    "jobs.maintenance.task_reset_stuck": "jobs.tasks.task_reset_stuck",
    "jobs.maintenance.task_cleanup_storage": "jobs.tasks.task_cleanup_storage",
    "jobs.maintenance.task_cleanup_old_jobs": "jobs.tasks.task_cleanup_old_jobs",
    "jobs.publishing.publications_wake_due": "jobs.tasks.publications_wake_due",
}


def task_paths_move(apps, schema_editor, moved=MOVED):
    from django.core.signing import BadSignature
    from django_q.signing import SignedPackage

    Schedule = apps.get_model("django_q", "Schedule")
    OrmQ = apps.get_model("django_q", "OrmQ")
    for old, new in moved.items():
        Schedule.objects.filter(func=old).update(func=new)
    for queued in OrmQ.objects.all():
        try:
            task = SignedPackage.loads(queued.payload)
        except BadSignature:  # not this site's: django-q2 refuses it anyway
            continue
        if isinstance(task, dict) and task.get("func") in moved:
            task["func"] = moved[task["func"]]
            queued.payload = SignedPackage.dumps(task)
            queued.save(update_fields=["payload"])


def task_paths_restore(apps, schema_editor):
    task_paths_move(apps, schema_editor, moved={new: old for old, new in MOVED.items()})


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0008_cluster_cache_table"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(task_paths_move, task_paths_restore)]
