from jobs.models import ExecutionStatus
from tests.factories import make_execution, make_job

EXECUTIONS = "/api/v1/executions/"


def test_list_own_executions_filtered_by_status(api, member, stranger):
    job = make_job(owner=member)
    done = make_execution(job, status=ExecutionStatus.SUCCESS)
    failed = make_execution(job, status=ExecutionStatus.FAILED, error="boom")
    make_execution(make_job(owner=stranger), status=ExecutionStatus.SUCCESS)
    response = api.get(EXECUTIONS)
    assert response.status_code == 200
    assert [row["id"] for row in response.data["results"]] == [failed.pk, done.pk]
    assert [row["id"] for row in api.get(EXECUTIONS + "?status=SUCCESS").data["results"]] == [done.pk]
    both = api.get(EXECUTIONS + "?status=SUCCESS&status=FAILED").data["results"]
    assert len(both) == 2
    assert api.get(EXECUTIONS + f"?job={job.pk}").data["count"] == 2
    assert api.get(EXECUTIONS + "?status=LOST").status_code == 400


def test_detail_has_step_records_and_signed_results(api, member):
    job = make_job(owner=member)
    execution = make_execution(
        job,
        status=ExecutionStatus.SUCCESS,
        results={"video": "jobs/1/2/video.mp4", "cover": "jobs/1/2/cover.jpg"},
        steps={
            "compose": {"status": "done", "duration_s": 12.5, "started_at": "2025-01-01T00:00:00+00:00"},
            "narration": {"status": "reused", "duration_s": 0.0},
        },
    )
    response = api.get(f"{EXECUTIONS}{execution.pk}/")
    assert response.status_code == 200
    assert list(response.data["steps"]) == ["narration", "compose"]  # pipeline order
    assert response.data["steps"]["compose"]["duration_s"] == 12.5
    assert set(response.data["urls"]) == {"video", "cover"}
    assert all(url.startswith("/files/") for url in response.data["urls"].values())


def test_someone_elses_execution_is_not_found(api, anon_api, stranger):
    execution = make_execution(make_job(owner=stranger))
    assert api.get(f"{EXECUTIONS}{execution.pk}/").status_code == 404
    assert anon_api.get(f"{EXECUTIONS}{execution.pk}/").status_code == 401


def test_executions_are_read_only(api, member):
    execution = make_execution(make_job(owner=member))
    assert api.delete(f"{EXECUTIONS}{execution.pk}/").status_code == 405
    assert api.post(EXECUTIONS, {}, format="json").status_code == 405
