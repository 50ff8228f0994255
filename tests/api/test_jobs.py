import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_q.models import OrmQ

from jobs.api.serializers import JobExportRowSerializer
from jobs.models import ExecutionStatus, Job, JobExecution, JobSplit
from tests.factories import make_account, make_execution, make_job, make_language, make_topic, make_voice

JOBS = "/api/v1/jobs/"


def job_url(job, action: str = "") -> str:
    return f"{JOBS}{job.pk}/" + (f"{action}/" if action else "")


# ---------------------------------------------------------------- create


def test_create_job_belongs_to_the_requesting_user(api, member):
    language = make_language(owner=None)
    voice = make_voice(owner=member, language=language)
    response = api.post(
        JOBS,
        {
            "title": "  测试视频 ",
            "content": "今天天气很好。#@#note for me#@#我们去公园散步。",
            "language": language.pk,
            "voice": voice.pk,
            "speech_speed": 1.2,
            "orientation": "vertical",
            "extra": {"h2v": True, "real_clip_ratio": 0.5, "segment_target_ms": 4000},
        },
        format="json",
    )
    assert response.status_code == 201, response.data
    job = Job.objects.get(pk=response.data["id"])
    assert job.owner == member
    assert job.title == "测试视频"
    assert job.content == "今天天气很好。我们去公园散步。"  # notes removed by jobs.validation
    assert response.data["status"] == "NEW"
    assert response.data["language"]["code"] == language.code
    assert response.data["voice"]["id"] == voice.pk
    assert response.data["latest_execution"] is None
    assert response.data["extra"] == {"h2v": True, "real_clip_ratio": 0.5, "segment_target_ms": 4000}


def test_create_job_reports_errors_per_field(api):
    response = api.post(
        JOBS, {"title": "   ", "content": "#@#only a note#@#", "speech_speed": 3}, format="json"
    )
    assert response.status_code == 400
    assert set(response.data) == {"title", "content", "speech_speed"}
    assert "empty" in str(response.data["content"][0])
    assert "outside 0.5-2.0" in str(response.data["speech_speed"][0])


def test_create_job_title_and_content_limits(api):
    response = api.post(JOBS, {"title": "t" * 256, "content": "x" * 10001}, format="json")
    assert response.status_code == 400
    assert "255" in str(response.data["title"][0])
    assert "10000" in str(response.data["content"][0])
    # The limit applies after cleaning: notes do not count.
    content = "x" * 10000 + "#@#" + "n" * 500 + "#@#"
    response = api.post(JOBS, {"title": "ok", "content": content}, format="json")
    assert response.status_code == 201


def test_create_job_rejects_someone_elses_rows(api, stranger):
    topic = make_topic(owner=stranger)
    account = make_account(owner=stranger)
    response = api.post(
        JOBS, {"title": "t", "content": "c", "topic": topic.pk, "account": account.pk}, format="json"
    )
    assert response.status_code == 400
    assert response.data["topic"] == [f"Topic {topic.pk} does not exist or is not yours."]
    assert response.data["account"] == [f"Account {account.pk} does not exist or is not yours."]
    # A row that does not exist at all gets the same answer: nothing leaks.
    response = api.post(JOBS, {"title": "t", "content": "c", "language": 999999}, format="json")
    assert response.data["language"] == ["Language 999999 does not exist or is not yours."]


def test_create_job_checks_extra_keys_and_types(api):
    response = api.post(
        JOBS,
        {
            "title": "t",
            "content": "c",
            "extra": {
                "real_clip_ratio": 1.5,
                "segment_target_ms": 500,
                "h2v": "yes",
                "colour": "red",
            },
        },
        format="json",
    )
    assert response.status_code == 400
    extra = response.data["extra"]
    assert set(extra) == {"real_clip_ratio", "segment_target_ms", "h2v", "colour"}
    assert "0 to 1" in str(extra["real_clip_ratio"][0])
    assert "1000 to 60000" in str(extra["segment_target_ms"][0])
    assert "Unknown key" in str(extra["colour"][0])
    response = api.post(JOBS, {"title": "t", "content": "c", "extra": [1, 2]}, format="json")
    assert response.status_code == 400 and "extra" in response.data


def test_anonymous_gets_401(anon_api, member):
    job = make_job(owner=member)
    assert anon_api.get(JOBS).status_code == 401
    assert anon_api.get(job_url(job)).status_code == 401
    assert anon_api.post(JOBS, {"title": "t", "content": "c"}, format="json").status_code == 401
    assert anon_api.post(job_url(job, "render")).status_code == 401


# ---------------------------------------------------------------- list


def test_list_shows_own_and_shared_jobs_without_deleted_ones(api, member, stranger):
    own = make_job(owner=member)
    shared = make_job(owner=None)
    make_job(owner=stranger)
    deleted = make_job(owner=member)
    api.delete(job_url(deleted))
    response = api.get(JOBS)
    assert response.status_code == 200
    assert {row["id"] for row in response.data["results"]} == {own.pk, shared.pk}
    assert response.data["count"] == 2


def test_list_filters(api, member):
    language = make_language(owner=member)
    account = make_account(owner=member)
    topic = make_topic(owner=member)
    plain = make_job(owner=member)
    with_language = make_job(owner=member, language=language)
    with_account = make_job(owner=member, account=account, topic=topic)
    make_execution(plain, status=ExecutionStatus.FAILED)
    make_execution(plain, status=ExecutionStatus.SUCCESS)  # the latest one counts
    make_execution(with_language, status=ExecutionStatus.RUNNING)

    def ids(query: str) -> set[int]:
        response = api.get(JOBS + "?" + query)
        assert response.status_code == 200, response.data
        return {row["id"] for row in response.data["results"]}

    assert ids("status=SUCCESS") == {plain.pk}
    assert ids("status=FAILED") == set()
    assert ids("status=RUNNING") == {with_language.pk}
    assert ids("status=NEW") == {with_account.pk}
    assert ids(f"language={language.pk}") == {with_language.pk}
    assert ids(f"account={account.pk}") == {with_account.pk}
    assert ids(f"topic={topic.pk}") == {with_account.pk}
    assert ids(f"ids={plain.pk},{with_account.pk}") == {plain.pk, with_account.pk}
    assert ids("account=99999999999999999999999") == set()
    assert api.get(JOBS + "?status=DONE").status_code == 400


def test_list_rows_carry_the_latest_execution(api, member):
    job = make_job(owner=member)
    make_execution(job, status=ExecutionStatus.FAILED, detail="old")
    latest = make_execution(job, status=ExecutionStatus.RUNNING, progress=40, detail="Composing")
    row = api.get(JOBS).data["results"][0]
    assert row["latest_execution"] == latest.pk
    assert (row["status"], row["progress"], row["status_detail"]) == ("RUNNING", 40, "Composing")


def test_list_pages(api, member):
    Job.objects.bulk_create(
        [Job(owner=member, team=member.personal_team, title=f"job {n}", content="c") for n in range(230)]
    )
    response = api.get(JOBS + "?page_size=20&page=2")
    assert response.data["count"] == 230
    assert len(response.data["results"]) == 20
    assert response.data["next"] and response.data["previous"]
    assert len(api.get(JOBS + "?page_size=1000").data["results"]) == 200  # capped
    assert len(api.get(JOBS).data["results"]) == 50
    assert api.get(JOBS + "?page=99").status_code == 404


def _list_queries(api, member, count: int) -> int:
    Job.objects.filter(owner=member).delete()
    language = make_language(owner=member)
    for number in range(count):
        job = make_job(owner=member, language=language, account=make_account(owner=member))
        make_execution(job, status=ExecutionStatus.SUCCESS, results={"video": f"jobs/{number}/video.mp4"})
    with CaptureQueriesContext(connection) as queries:
        response = api.get(JOBS + "?page_size=100")
    assert response.status_code == 200
    assert len(response.data["results"]) == count
    return len(queries)


def test_list_query_count_does_not_grow_with_the_number_of_jobs(api, member):
    assert _list_queries(api, member, 1) == _list_queries(api, member, 50)


# ---------------------------------------------------------------- detail


def test_detail_nests_related_rows_splits_and_signed_result_links(api, member):
    language = make_language(owner=None)
    topic = make_topic(owner=member)
    account = make_account(owner=member)
    job = make_job(owner=member, language=language, topic=topic, account=account)
    JobSplit.objects.create(
        job=job,
        index=0,
        start_ms=0,
        end_ms=1000,
        text="a",
        images=[{"key": "jobs/1/pictures/a.png", "seed": 1, "source": "flux"}],
        selected="jobs/1/pictures/a.png",
    )
    make_execution(
        job,
        status=ExecutionStatus.SUCCESS,
        results={"video": "jobs/1/1/video.mp4"},
        steps={
            "narration": {"status": "done", "duration_s": 1.5, "input_hash": "x", "data": {"sentences": []}}
        },
    )
    response = api.get(job_url(job))
    assert response.status_code == 200
    data = response.data
    assert data["language"]["code"] == language.code
    assert data["topic"]["name"] == topic.name
    assert data["account"]["username"] == account.username
    assert data["splits"][0]["images"][0]["url"].startswith("/files/")
    assert data["splits"][0]["selected_url"].startswith("/files/")
    execution = data["latest_execution"]
    assert execution["status"] == "SUCCESS"
    assert execution["urls"]["video"].startswith("/files/")
    assert execution["steps"]["narration"]["duration_s"] == 1.5
    assert "data" not in execution["steps"]["narration"]


def test_someone_elses_job_is_not_found(api, stranger):
    job = make_job(owner=stranger)
    assert api.get(job_url(job)).status_code == 404
    assert api.patch(job_url(job), {"title": "x"}, format="json").status_code == 404
    assert api.delete(job_url(job)).status_code == 404
    assert api.post(job_url(job, "render")).status_code == 404
    assert api.get(job_url(job, "desc")).status_code == 404
    assert not JobExecution.objects.exists()


# ---------------------------------------------------------------- update and delete


def test_patch_and_put_go_through_the_validation_rules(api, member):
    job = make_job(owner=member)
    music = f"music/{member.pk.hex}/calm.mp3"
    response = api.patch(job_url(job), {"title": "New\ttitle", "extra": {"music": music}}, format="json")
    assert response.status_code == 200, response.data
    job.refresh_from_db()
    assert job.title == "New title" and job.extra == {"music": music}
    response = api.patch(job_url(job), {"speech_speed": 0.1}, format="json")
    assert response.status_code == 400 and "speech_speed" in response.data
    response = api.put(
        job_url(job), {"title": "Full", "content": "新的内容。", "orientation": "vertical"}, format="json"
    )
    assert response.status_code == 200
    job.refresh_from_db()
    assert (job.title, job.content, job.orientation) == ("Full", "新的内容。", "vertical")
    assert api.put(job_url(job), {"title": "Only a title"}, format="json").status_code == 400


def test_shared_jobs_are_read_only_except_for_superusers(api, admin_api):
    job = make_job(owner=None)
    assert api.get(job_url(job)).status_code == 200
    assert api.patch(job_url(job), {"title": "mine now"}, format="json").status_code == 403
    assert api.delete(job_url(job)).status_code == 403
    assert api.post(job_url(job, "render")).status_code == 403
    assert admin_api.patch(job_url(job), {"title": "fixed"}, format="json").status_code == 200


def test_delete_is_a_soft_delete_and_restore_brings_it_back(api, member):
    job = make_job(owner=member)
    assert api.delete(job_url(job)).status_code == 204
    job.refresh_from_db()
    assert job.deleted_at is not None
    assert api.get(job_url(job)).status_code == 404
    response = api.post(job_url(job, "restore"))
    assert response.status_code == 200
    job.refresh_from_db()
    assert job.deleted_at is None


# ---------------------------------------------------------------- actions


def test_render_only_queues_an_execution(api, member, django_capture_on_commit_callbacks):
    job = make_job(owner=member)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(job_url(job, "render"))
    assert response.status_code == 202
    execution = JobExecution.objects.get(job=job)
    assert response.data["id"] == execution.pk
    assert execution.status == ExecutionStatus.PENDING  # nothing rendered it
    assert OrmQ.objects.count() == 1  # a task waits in the broker for a worker
    again = api.post(job_url(job, "rerender"))
    assert again.status_code == 202
    assert again.data["id"] == execution.pk  # never two renders of one job at once


def test_cancel_the_queued_render_or_409(api, member):
    job = make_job(owner=member)
    assert api.post(job_url(job, "cancel")).status_code == 409
    execution = make_execution(job)
    response = api.post(job_url(job, "cancel"))
    assert response.status_code == 200
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.CANCELLED
    assert api.post(job_url(job, "cancel")).status_code == 409


def test_increase_priority_puts_the_job_first(api, member):
    first = make_job(owner=member, runorder=0)
    job = make_job(owner=member, runorder=5)
    response = api.post(job_url(job, "increase_priority"))
    assert response.status_code == 200
    assert response.data["runorder"] < first.runorder
    assert api.get(JOBS).data["results"][0]["id"] == job.pk


def test_desc_gives_publish_text_with_signed_links(api, member):
    job = make_job(owner=member, publish_title="公园散步", description="A walk.")
    make_execution(
        job, status=ExecutionStatus.SUCCESS, results={"video": "jobs/v.mp4", "cover": "jobs/c.jpg"}
    )
    make_execution(job, status=ExecutionStatus.FAILED, results={})  # links come from the last success
    response = api.get(job_url(job, "desc"))
    assert response.status_code == 200
    assert response.data["links"]["video"].startswith("/files/")
    assert response.data["text"].startswith("公园散步\n\nA walk.\n\nVideo: /files/")


def test_export_as_json_and_csv(api, member):
    done = make_job(owner=member, title="=cmd|calc", description="d1")
    make_execution(done, status=ExecutionStatus.SUCCESS, results={"video": "jobs/v.mp4", "srt": "jobs/s.srt"})
    new = make_job(owner=member, title="新的")
    make_job(owner=member, title="not asked for")
    response = api.get(f"{JOBS}export/?ids={done.pk},{new.pk}")
    assert response.status_code == 200
    rows = {row["id"]: row for row in response.json()}
    assert set(rows) == {done.pk, new.pk}
    assert rows[done.pk]["video_url"].startswith("/files/") and rows[done.pk]["status"] == "SUCCESS"
    assert rows[new.pk]["video_url"] == "" and rows[new.pk]["status"] == "NEW"

    response = api.get(f"{JOBS}export/?ids={done.pk},{new.pk}&format=csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [row["title"] for row in table] == ["'=cmd|calc", "新的"]  # no formula injection
    assert table[0]["subtitles_url"].startswith("/files/")


def test_export_has_the_documented_columns(api, member):
    make_job(owner=member)
    documented = list(JobExportRowSerializer().fields)
    assert list(api.get(f"{JOBS}export/").json()[0]) == documented
    header = api.get(f"{JOBS}export/?format=csv").content.decode("utf-8-sig").splitlines()[0]
    assert header.split(",") == documented


def test_export_respects_ownership(api, stranger):
    theirs = make_job(owner=stranger)
    assert api.get(f"{JOBS}export/?ids={theirs.pk}").json() == []


@pytest.mark.parametrize("action", ["increase_priority", "render", "rerender", "cancel", "restore"])
def test_actions_on_shared_jobs_need_a_superuser(api, action):
    job = make_job(owner=None)
    if action == "restore":
        from jobs import services

        services.job_soft_delete(job=job)
    assert api.post(job_url(job, action)).status_code == 403
