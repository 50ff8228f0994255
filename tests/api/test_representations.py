"""The job list and detail, their segments and executions are written out by hand for speed; they must
give exactly what their declared fields give through DRF's own machinery (which also makes the schema)."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone
from rest_framework import serializers
from rest_framework.test import APIRequestFactory

from jobs.api.serializers import (
    ExecutionDetailSerializer,
    JobDetailSerializer,
    JobListSerializer,
    SplitSerializer,
)
from jobs.models import ExecutionStatus, Job, JobSplit, StockClip
from tests.factories import (
    make_account,
    make_execution,
    make_job,
    make_language,
    make_topic,
    make_user,
    make_voice,
)


def by_fields(serializer: serializers.Serializer, instance) -> dict:
    return serializers.Serializer.to_representation(serializer, instance)


@pytest.fixture
def context(db):
    request = APIRequestFactory().get("/api/v1/jobs/")
    request.user = make_user()
    return {"request": request}


@pytest.fixture(autouse=True)
def one_signing_second():
    """Signed links carry the time they were signed at; both renderings must sign in the same second."""
    with mock.patch("django.core.signing.time.time", return_value=1_800_000_000):
        yield


@pytest.fixture
def jobs(db):
    owner = make_user()
    language = make_language(owner=owner)
    full = make_job(
        owner=owner,
        language=language,
        voice=make_voice(owner=owner, language=language, reference="voices/ref.wav"),
        topic=make_topic(owner=owner, lora_name="health"),
        account=make_account(owner=owner),
        description="A walk.",
        publish_title="Walk",
        extra={"title_text": "公园", "real_clip_ratio": 0.5},
        speech_speed=1.25,
        runorder=-3,
    )
    clip = StockClip.objects.create(
        owner=owner, team=owner.personal_team, file="clips/sea.mp4", title="Sea", duration_ms=8000
    )
    JobSplit.objects.create(
        job=full,
        index=0,
        start_ms=0,
        end_ms=1200,
        text="今天。",
        prompt="a park",
        images=[{"key": "jobs/1/pictures/a.png", "seed": 7, "source": "flux"}, "junk"],
        selected="jobs/1/pictures/a.png",
    )
    JobSplit.objects.create(job=full, index=1, start_ms=1200, end_ms=3000, text="散步。", clip=clip)
    make_execution(
        full,
        status=ExecutionStatus.SUCCESS,
        progress=100,
        detail="Done",
        started_at=timezone.now() - timedelta(seconds=90),
        finished_at=timezone.now(),
        results={"video": "jobs/1/1/video.mp4", "cover": "jobs/1/1/cover.jpg", "count": 3},
        steps={"narration": {"status": "done", "duration_s": 1.5, "data": {}}, "x": "junk"},
    )
    make_execution(
        full,
        status=ExecutionStatus.RUNNING,
        progress=40,
        current_step="pictures",
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
        steps={"narration": {"status": "reused"}, "pictures": {"status": "running"}},
    )
    bare = make_job(owner=None)
    deleted = make_job(owner=owner, deleted_at=timezone.now())
    make_execution(deleted, status=ExecutionStatus.FAILED, error="boom", detail="Failed")
    return [full, bare, deleted]


def test_list_rows_match_the_declared_fields(jobs, context):
    serializer = JobListSerializer(context=context)
    rows = {row["id"]: row for row in Job.objects.values(*JobListSerializer.COLUMNS)}
    for job in Job.objects.select_related("latest_execution"):
        assert serializer.to_representation(rows[job.pk]) == by_fields(serializer, job)


def test_job_details_match_the_declared_fields(jobs, context):
    serializer = JobDetailSerializer(context=context)
    for job in JobDetailSerializer.detail_queryset(Job.objects.all()):
        fast = serializer.to_representation(job)
        assert fast == by_fields(serializer, job)
        assert list(fast) == list(serializer.fields)


def test_segments_and_executions_match_the_declared_fields(jobs, context):
    split = SplitSerializer(context=context)
    for split_row in JobSplit.objects.select_related("clip"):
        assert split.to_representation(split_row) == by_fields(split, split_row)
    execution = ExecutionDetailSerializer(context=context)
    checked = 0
    for job in jobs:
        for row in job.executions.all():
            fast = execution.to_representation(row)
            assert fast == by_fields(execution, row)
            checked += fast["eta_s"] is not None  # the running one, estimated from the finished one
    assert checked == 1
