import pytest
from django.db import IntegrityError, transaction

from jobs import services
from jobs.models import ExecutionStatus, Job, JobExecution, JobSplit
from tests.factories import make_execution, make_job


@pytest.mark.django_db
def test_database_rejects_speech_speed_out_of_range():
    with pytest.raises(IntegrityError), transaction.atomic():
        make_job(speech_speed=3.0)


@pytest.mark.django_db
def test_database_allows_one_active_execution_per_job():
    job = make_job()
    make_execution(job, status=ExecutionStatus.RUNNING)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_execution(job, status=ExecutionStatus.PENDING)
    # Finished executions do not count.
    make_execution(make_job(), status=ExecutionStatus.SUCCESS)
    make_execution(job, status=ExecutionStatus.FAILED)
    assert job.executions.count() == 2


@pytest.mark.django_db
def test_execution_create_answers_with_the_active_execution():
    job = make_job()
    first = services.execution_create(job=job)
    second = services.execution_create(job=job)
    assert first.pk == second.pk
    assert JobExecution.objects.filter(job=job).count() == 1


@pytest.mark.django_db
def test_split_index_is_unique_per_job():
    job = make_job()
    JobSplit.objects.create(job=job, index=0, start_ms=0, end_ms=100, text="a")
    with pytest.raises(IntegrityError), transaction.atomic():
        JobSplit.objects.create(job=job, index=0, start_ms=100, end_ms=200, text="b")


@pytest.mark.django_db
def test_split_end_cannot_precede_start():
    with pytest.raises(IntegrityError), transaction.atomic():
        JobSplit.objects.create(job=make_job(), index=0, start_ms=500, end_ms=100, text="a")


@pytest.mark.django_db
def test_latest_execution_and_duration():
    job = make_job()
    assert job.latest_execution is None
    make_execution(job, status=ExecutionStatus.FAILED)
    newest = make_execution(job, status=ExecutionStatus.PENDING)
    assert job.latest_execution == newest
    assert Job.objects.get(pk=job.pk).latest_execution == newest
    assert newest.duration is None
    assert newest.is_active


@pytest.mark.django_db
def test_bulk_created_executions_become_their_jobs_latest():
    first, second, untouched = make_job(), make_job(), make_job()
    created = JobExecution.objects.bulk_create(
        [
            JobExecution(job=first, status=ExecutionStatus.FAILED),
            JobExecution(job=second),
            JobExecution(job=first, status=ExecutionStatus.SUCCESS),
        ]
    )
    latest = dict(Job.objects.values_list("pk", "latest_execution"))
    assert latest == {first.pk: created[2].pk, second.pk: created[1].pk, untouched.pk: None}


@pytest.mark.django_db
def test_deleting_the_latest_execution_leaves_the_job():
    job = make_job()
    make_execution(job, status=ExecutionStatus.FAILED).delete()
    assert Job.objects.get(pk=job.pk).latest_execution is None


@pytest.mark.django_db
def test_soft_delete_keeps_the_job_and_its_executions():
    job = make_job()
    make_execution(job, status=ExecutionStatus.SUCCESS)
    services.job_soft_delete(job=job)
    assert not Job.objects.alive().filter(pk=job.pk).exists()
    assert Job.objects.filter(pk=job.pk).exists()
    assert job.executions.count() == 1
    with pytest.raises(Exception, match="deleted"):
        services.execution_create(job=job)
    services.job_restore(job=job)
    assert Job.objects.alive().filter(pk=job.pk).exists()


@pytest.mark.django_db
def test_frame_size_follows_orientation():
    assert make_job(orientation="horizontal").frame_size == (1360, 768)
    assert make_job(orientation="vertical").frame_size == (768, 1360)
