"""Creating a job can queue its render in the same call; a batch of jobs is created all or nothing, with
each bad row named by its index."""

import pytest
from django_q.models import OrmQ

from jobs.models import ExecutionStatus, Job, JobExecution
from tests.factories import make_language, make_voice

JOBS = "/api/v1/jobs/"
BATCH = "/api/v1/jobs/batch/"


def test_create_with_render_queues_the_render_in_the_same_call(api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        body = {"title": "公园", "content": "今天天气很好。", "render": True}
        response = api.post(JOBS, body, format="json")

    assert response.status_code == 201, response.data
    execution = JobExecution.objects.get(job_id=response.data["id"])
    assert execution.status == ExecutionStatus.PENDING
    assert response.data["latest_execution"]["id"] == execution.pk
    assert OrmQ.objects.count() == 1  # a worker is woken


def test_create_without_render_queues_nothing(api):
    response = api.post(JOBS, {"title": "公园", "content": "今天天气很好。"}, format="json")

    assert response.status_code == 201
    assert response.data["latest_execution"] is None and not JobExecution.objects.exists()


def test_batch_creates_every_job_and_queues_them(api, member, django_capture_on_commit_callbacks):
    language = make_language(owner=member)
    rows = [
        {"title": f"第{number}集", "content": "今天天气很好。", "language": language.pk}
        for number in range(3)
    ]

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(BATCH, {"jobs": rows, "render": True}, format="json")

    assert response.status_code == 201, response.data
    assert [job["title"] for job in response.data["jobs"]] == ["第0集", "第1集", "第2集"]
    jobs = Job.objects.filter(owner=member)
    assert jobs.count() == 3 and all(job.language_id == language.pk for job in jobs)
    assert JobExecution.objects.filter(job__in=jobs, status=ExecutionStatus.PENDING).count() == 3


def test_batch_without_render_queues_nothing(api, member):
    response = api.post(BATCH, {"jobs": [{"title": "a", "content": "今天天气很好。"}]}, format="json")

    assert response.status_code == 201
    assert Job.objects.filter(owner=member).count() == 1 and not JobExecution.objects.exists()


def test_batch_with_a_bad_row_creates_nothing_and_names_each_bad_row(api, stranger):
    theirs = make_language(owner=stranger)
    rows = [
        {"title": "good", "content": "今天天气很好。"},
        {"title": "   ", "content": "今天天气很好。"},  # the import's and single create's rule
        {"title": "good too", "content": "今天天气很好。"},
        {"title": "speedy", "content": "今天天气很好。", "speech_speed": 3.0, "language": theirs.pk},
    ]

    response = api.post(BATCH, {"jobs": rows, "render": True}, format="json")

    assert response.status_code == 400
    assert response.data == {
        "jobs": {
            "1": {"title": ["Title is empty."]},
            "3": {
                "speech_speed": ["Speech speed 3.0 is outside 0.5-2.0."],
                "language": [f"Language {theirs.pk} does not exist or is not yours."],
            },
        }
    }
    assert not Job.objects.exists() and not JobExecution.objects.exists()


def test_batch_rows_of_the_wrong_type_are_named_by_index(api):
    response = api.post(BATCH, {"jobs": [{"title": "a", "content": "今天。"}, {"title": "b"}]}, format="json")

    assert response.status_code == 400
    assert list(response.data["jobs"]) == ["1"] and "content" in response.data["jobs"]["1"]
    assert not Job.objects.exists()


@pytest.mark.parametrize("body", [{"jobs": []}, {"jobs": "nope"}, {}, []])
def test_batch_needs_a_list_of_jobs(api, body):
    response = api.post(BATCH, body, format="json")

    assert response.status_code == 400 and "jobs" in response.data


def test_batch_refuses_more_than_jobs_batch_max_rows(api, settings):
    settings.JOBS_BATCH_MAX = 2
    rows = [{"title": str(number), "content": "今天天气很好。"} for number in range(3)]

    response = api.post(BATCH, {"jobs": rows}, format="json")

    assert response.status_code == 400
    assert response.data == {"jobs": ["Send 1 to 2 jobs in one batch, not 3."]}
    assert not Job.objects.exists()


def test_batch_reports_every_bad_row_in_the_first_answer(api, member, stranger):
    """Reference errors (no such row, not yours) and rule errors (empty title, speed) come together,
    within a row too, and nothing is created."""
    theirs = make_language(owner=stranger)
    mine = make_language(owner=member, code="en-US")
    chinese_voice = make_voice(owner=member, language=make_language(owner=member, code="zh-CN"))
    rows = [{"title": f"第{number}集", "content": "今天天气很好。"} for number in range(50)]
    rows[3] = {"title": "no such language", "content": "今天。", "language": 999_999}
    rows[7] = {"title": "   ", "content": "今天。"}
    rows[11] = {"title": "both", "content": "今天。", "topic": 999_999, "speech_speed": 9}
    rows[19] = {"title": "theirs", "content": "今天。", "language": theirs.pk}
    rows[23] = {"title": "symbols", "content": "!!! ??? ..."}
    rows[31] = {"title": "mismatch", "content": "Today.", "language": mine.pk, "voice": chinese_voice.pk}
    rows[40] = {"content": "今天。"}
    rows[49] = {"title": "", "content": "", "runorder": "soon"}

    response = api.post(BATCH, {"jobs": rows, "render": True}, format="json")

    assert response.status_code == 400
    errors = response.data["jobs"]
    assert sorted(errors, key=int) == ["3", "7", "11", "19", "23", "31", "40", "49"]
    assert list(errors["3"]) == ["language"]
    assert set(errors["11"]) == {"topic", "speech_speed"}
    assert set(errors["49"]) == {"title", "content", "runorder"}
    assert errors["31"] == {
        "voice": [
            (
                f"The voice {chinese_voice.name} speaks {chinese_voice.language}, not the "
                f"job's language {mine}; choose a voice of {mine.name}."
            )
        ]
    }
    assert not Job.objects.exists()


def test_batch_render_that_is_not_a_boolean_names_its_field(api):
    response = api.post(
        BATCH, {"jobs": [{"title": "a", "content": "今天。"}], "render": "maybe"}, format="json"
    )

    assert response.status_code == 400
    assert response.data == {"render": ["Must be a valid boolean."]}
    assert not Job.objects.exists()


def test_batch_names_a_bad_render_flag_and_bad_rows_together(api):
    response = api.post(
        BATCH, {"jobs": [{"title": "", "content": "今天。"}], "render": "maybe"}, format="json"
    )

    assert response.status_code == 400
    assert response.data == {
        "render": ["Must be a valid boolean."],
        "jobs": {"0": {"title": ["Title is empty."]}},
    }


def test_batch_checks_every_row_before_opening_a_transaction(api, monkeypatch):
    from django.db import transaction

    from jobs import services, validation

    outside = len(transaction.get_connection().savepoint_ids)  # the test's own atomic blocks
    checked_inside: list[bool] = []
    check_content = validation.check_content

    def recording_check(content):
        checked_inside.append(len(transaction.get_connection().savepoint_ids) > outside)
        return check_content(content)

    monkeypatch.setattr(validation, "check_content", recording_check)
    rows = [{"title": str(number), "content": "今天天气很好。"} for number in range(3)]

    response = api.post(BATCH, {"jobs": rows}, format="json")

    assert response.status_code == 201, response.data
    assert checked_inside == [False, False, False]
    assert services.Job.objects.count() == 3
