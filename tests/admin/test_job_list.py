import csv
import io
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from jobs.models import ExecutionStatus, Job, JobExecution
from tests.admin.conftest import client_for
from tests.factories import make_account, make_execution, make_job, make_language, make_topic

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:jobs_job_changelist")


def rendered_job(owner, **fields) -> Job:
    """A job with a successful execution whose artifacts are in storage."""
    job = make_job(owner=owner, **fields)
    video = default_storage.save(f"jobs/{job.pk}/1/video.mp4", ContentFile(b"fake video"))
    cover = default_storage.save(f"jobs/{job.pk}/1/cover.jpg", ContentFile(b"fake cover"))
    make_execution(
        job,
        status=ExecutionStatus.SUCCESS,
        progress=100,
        results={"video": video, "cover": cover},
        steps={"narration": {"status": "done", "duration_s": 1.5, "data": {"duration_ms": 83000}}},
        finished_at=timezone.now(),
    )
    return job


def act(client, action: str, jobs, **extra):
    return client.post(
        CHANGELIST + extra.pop("query", ""),
        {"action": action, "_selected_action": [job.pk for job in jobs]},
        **extra,
    )


def test_list_shows_status_progress_length_and_columns(operator):
    account, language, topic = make_account(), make_language(), make_topic()
    job = rendered_job(operator, account=account, language=language, topic=topic, title="Rendered one")
    running = make_job(owner=operator, title="Running one")
    make_execution(running, status=ExecutionStatus.RUNNING, progress=42)
    response = client_for(operator).get(CHANGELIST)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Rendered one" in html and "status-success" in html and "1:23" in html
    assert "status-running" in html and "42%" in html
    assert account.username in html and topic.name in html
    assert job.pk in [row.pk for row in response.context["cl"].result_list]


def test_list_hides_other_operators_jobs(operator, other_operator):
    make_job(owner=other_operator, title="Not mine")
    make_job(owner=operator, title="Mine")
    titles = [job.title for job in client_for(operator).get(CHANGELIST).context["cl"].result_list]
    assert titles == ["Mine"]


def test_deleted_jobs_only_through_the_deleted_filter(operator):
    make_job(owner=operator, title="Alive")
    make_job(owner=operator, title="Gone", deleted_at=timezone.now())
    client = client_for(operator)

    def titles(query: str) -> list[str]:
        return sorted(job.title for job in client.get(CHANGELIST + query).context["cl"].result_list)

    assert titles("") == ["Alive"]
    assert titles("?deleted=yes") == ["Gone"]
    assert titles("?deleted=all") == ["Alive", "Gone"]


def test_status_filter_uses_the_latest_execution(operator):
    failed_then_ok = rendered_job(operator, title="Now fine")
    JobExecution.objects.filter(job=failed_then_ok).update(created_at=timezone.now())
    make_execution(failed_then_ok, status=ExecutionStatus.FAILED)  # newer: the latest
    make_job(owner=operator, title="Fresh")
    client = client_for(operator)
    failed = client.get(CHANGELIST + "?status=FAILED").context["cl"].result_list
    assert [job.title for job in failed] == ["Now fine"]
    assert [j.title for j in client.get(CHANGELIST + "?status=NEW").context["cl"].result_list] == ["Fresh"]
    assert list(client.get(CHANGELIST + "?status=SUCCESS").context["cl"].result_list) == []


def test_search_finds_title_and_content(operator):
    make_job(owner=operator, title="Parks", content="散步很好。")
    make_job(owner=operator, title="Other", content="别的。")
    client = client_for(operator)
    assert [j.title for j in client.get(CHANGELIST + "?q=散步").context["cl"].result_list] == ["Parks"]


def test_render_action_queues_an_execution(operator):
    job = make_job(owner=operator)
    response = act(client_for(operator), "render", [job], follow=True)
    assert "Queued 1 job(s)" in response.content.decode()
    assert job.executions.get().status == ExecutionStatus.PENDING


def test_cancel_action_cancels_the_waiting_execution(operator):
    job = make_job(owner=operator)
    execution = make_execution(job)
    response = act(client_for(operator), "cancel", [job], follow=True)
    assert "Asked 1 render(s) to stop" in response.content.decode()
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.CANCELLED


def test_increase_priority_action_puts_the_job_first(operator):
    make_job(owner=operator, runorder=5)
    job = make_job(owner=operator, runorder=10)
    act(client_for(operator), "increase_priority", [job])
    job.refresh_from_db()
    assert job.runorder == 4


def test_duplicate_action_copies_the_job(operator):
    language = make_language()
    job = make_job(owner=operator, title="Original", language=language, speech_speed=1.3, extra={"h2v": True})
    act(client_for(operator), "duplicate", [job])
    copy = Job.objects.get(title="Original (copy)")
    assert (copy.owner, copy.language, copy.speech_speed, copy.extra, copy.content) == (
        operator,
        language,
        1.3,
        {"h2v": True},
        job.content,
    )


def test_soft_delete_and_restore_actions(operator):
    job = make_job(owner=operator)
    client = client_for(operator)
    act(client, "soft_delete", [job])
    job.refresh_from_db()
    assert job.deleted_at is not None
    act(client, "restore", [job], query="?deleted=yes")
    job.refresh_from_db()
    assert job.deleted_at is None


def test_export_zip_streams_the_latest_artifacts(operator):
    job = rendered_job(operator, title="Zip me")
    response = act(client_for(operator), "export_zip", [job])
    assert response["Content-Type"] == "application/zip"
    bundle = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = sorted(bundle.namelist())
    assert names == [f"{job.pk}-zip-me/cover.jpg", f"{job.pk}-zip-me/video.mp4"]
    assert bundle.read(f"{job.pk}-zip-me/video.mp4") == b"fake video"


def test_export_zip_without_renders_warns(operator):
    job = make_job(owner=operator)
    response = act(client_for(operator), "export_zip", [job], follow=True)
    assert "has a successful render" in response.content.decode()


def test_export_csv_has_signed_links(operator):
    job = rendered_job(operator, title="Linked", publish_title="Pub")
    response = act(client_for(operator), "export_csv", [job])
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0]["title"] == "Linked" and rows[0]["publish_title"] == "Pub"
    assert rows[0]["status"] == "SUCCESS" and rows[0]["subtitles_url"] == ""
    assert rows[0]["video_url"].startswith("http://testserver/files/")
    assert client_for(operator).get(rows[0]["video_url"].removeprefix("http://testserver")).status_code == 200


def test_export_csv_guards_formula_cells(operator):
    """A title a spreadsheet would run as a formula (CSV injection) is exported as text."""
    job = rendered_job(operator, title='=HYPERLINK("http://x")', description="@SUM(A1)", publish_title="-2+3")
    response = act(client_for(operator), "export_csv", [job])
    row = next(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert row["title"] == '\'=HYPERLINK("http://x")'
    assert (row["description"], row["publish_title"]) == ("'@SUM(A1)", "'-2+3")


def test_viewer_cannot_run_change_actions(viewer):
    job = make_job(owner=viewer)
    response = act(client_for(viewer), "render", [job])
    assert job.executions.count() == 0
    assert response.status_code in (200, 302)


def test_actions_ignore_other_operators_jobs(operator, other_operator):
    job = make_job(owner=other_operator)
    act(client_for(operator), "soft_delete", [job])
    job.refresh_from_db()
    assert job.deleted_at is None


def test_updated_column_follows_the_live_feed(operator):
    """The column shows when the job or its latest render last changed, in a cell the feed updates, and
    every event carries that time in the column's own form."""
    from django.contrib.staticfiles import finders

    from jobs.render.progress import execution_event

    job = make_job(owner=operator)
    execution = make_execution(job, status=ExecutionStatus.RUNNING, progress=40)
    Job.objects.filter(pk=job.pk).update(
        latest_execution=execution, updated_at=timezone.now() - timezone.timedelta(days=3)
    )

    html = client_for(operator).get(reverse("admin:jobs_job_changelist")).content.decode()

    shown = timezone.localtime(execution.updated_at).strftime("%Y-%m-%d %H:%M")
    assert f'data-job-updated="{job.pk}"' in html and shown in html
    event = execution_event(execution)
    assert event["updated_at"] == timezone.localtime(execution.updated_at).isoformat()
    with open(finders.find("jobs/joblist.js"), encoding="utf-8") as script:
        assert 'cell("updated", event.job)' in script.read()  # the live list writes event.updated_at there
