"""Each read shape is described once, by its serializer's declared fields: the OpenAPI schema comes from
them (drf-spectacular) and so does the output (accounts.api.representation compiles them into a fast
path). These tests hold the three together: the schema's properties are the keys the endpoints
return, the compiled output is DRF's own for the same fields, and the outputs are the ones clients
have been getting."""

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
import yaml
from django.core.files.storage import default_storage
from rest_framework import serializers
from rest_framework.test import APIRequestFactory

from accounts.api.representation import CompiledRepresentation
from accounts.api.serializers import AccountBriefSerializer
from jobs.api.serializers import (
    ClipBriefSerializer,
    ExecutionDetailSerializer,
    ExecutionSerializer,
    JobDetailSerializer,
    JobListSerializer,
    SplitImageSerializer,
    SplitSerializer,
)
from jobs.models import ExecutionStatus, Job, JobExecution, JobSplit, StockClip
from tests.api.conftest import client_for
from tests.factories import (
    make_account,
    make_execution,
    make_job,
    make_language,
    make_topic,
    make_user,
    make_voice,
)
from topics.api.serializers import TopicBriefSerializer
from voices.api.serializers import LanguageBriefSerializer, VoiceBriefSerializer

COMPILED = [
    JobListSerializer,
    JobDetailSerializer,
    ExecutionSerializer,
    ExecutionDetailSerializer,
    SplitSerializer,
    SplitImageSerializer,
    ClipBriefSerializer,
    LanguageBriefSerializer,
    VoiceBriefSerializer,
    TopicBriefSerializer,
    AccountBriefSerializer,
]
CREATED = datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
STARTED = datetime(2025, 3, 4, 6, 0, 0, tzinfo=UTC)
FINISHED = STARTED + timedelta(seconds=90, milliseconds=250)


@pytest.fixture(autouse=True)
def one_signing_second():
    """Signed links carry the time they were signed at: the test and the API sign in the same second."""
    with mock.patch("django.core.signing.time.time", return_value=1_800_000_000):
        yield


@pytest.fixture
def jobs(db):
    """A job with everything (a finished render, a running one, segments with a picture, a clip and a
    junk entry among the pictures), a bare job, a deleted failed one; fixed times."""
    owner = make_user()
    language = make_language(owner=owner, code="zh-CN", name="中文")
    full = make_job(
        owner=owner,
        title="Walk",
        language=language,
        voice=make_voice(owner=owner, name="Lin", language=language, reference="voices/ref.wav"),
        topic=make_topic(owner=owner, name="Health", lora_name="health", real_clip_ratio=0.25),
        account=make_account(owner=owner, username="walker", platform="youtube"),
        description="A walk.",
        publish_title="Walk in the park",
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
        sentences=["今天。"],
        prompt="a park",
        images=[{"key": "jobs/1/pictures/a.png", "seed": 7, "source": "flux"}, "junk", {"key": "b.png"}],
        selected="jobs/1/pictures/a.png",
    )
    JobSplit.objects.create(job=full, index=1, start_ms=1200, end_ms=3000, text="散步。", clip=clip)
    make_execution(
        full,
        status=ExecutionStatus.RUNNING,
        progress=40,
        current_step="pictures",
        started_at=STARTED,
        heartbeat_at=STARTED,
        steps={"narration": {"status": "reused"}, "pictures": {"status": "running"}},
    )
    make_execution(
        full,
        status=ExecutionStatus.SUCCESS,
        progress=100,
        detail="Done",
        attempt=2,
        started_at=STARTED,
        finished_at=FINISHED,
        results={"video": "jobs/1/1/video.mp4", "cover": "jobs/1/1/cover.jpg"},
        steps={
            "compose": {"status": "done", "duration_s": 1.5},
            "narration": {"status": "done"},
            "x": "junk",
        },
    )
    bare = make_job(owner=owner, title="Bare")
    deleted = make_job(owner=owner, title="Gone", deleted_at=CREATED)
    make_execution(deleted, status=ExecutionStatus.FAILED, error="boom", detail="Failed")
    Job.objects.update(created_at=CREATED, updated_at=CREATED)
    JobSplit.objects.update(updated_at=CREATED)
    JobExecution.objects.update(created_at=CREATED)
    return {"owner": owner, "full": full, "bare": bare, "deleted": deleted}


def resolve(schema: dict, node: dict) -> dict:
    """The node with $ref and single-entry allOf followed."""
    while True:
        if "$ref" in node:
            node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
        elif "allOf" in node and len(node["allOf"]) == 1 and "properties" not in node:
            node = {**node["allOf"][0], **{k: v for k, v in node.items() if k != "allOf"}}
        else:
            return node


def shape_mismatches(schema: dict, node: dict, value, where: str) -> list[str]:
    """Where `value` has other keys than the schema's properties (or lacks a required one), all the
    way down through objects, maps (the steps of a render) and arrays. A serializer's object (it has required properties) gives
    exactly its properties; a documented JSON field (Job.extra: every key optional) only some."""
    node = resolve(schema, node)
    problems = []
    if isinstance(value, dict) and "properties" in node:
        documented, returned = set(node["properties"]), set(value)
        if documented != returned if "required" in node else not returned <= documented:
            problems.append(f"{where}: documented {sorted(documented)}, returned {sorted(returned)}")
        missing = set(node.get("required", [])) - returned
        if missing:
            problems.append(f"{where}: required but missing {sorted(missing)}")
        for key in documented & returned:
            if value[key] is not None:
                problems += shape_mismatches(schema, node["properties"][key], value[key], f"{where}.{key}")
    elif isinstance(value, dict) and isinstance(node.get("additionalProperties"), dict):
        for key, item in value.items():
            problems += shape_mismatches(schema, node["additionalProperties"], item, f"{where}.{key}")
    elif isinstance(value, list) and "items" in node:
        for number, item in enumerate(value):
            problems += shape_mismatches(schema, node["items"], item, f"{where}[{number}]")
    return problems


def response_schema(schema: dict, path: str, method: str = "get") -> dict:
    return schema["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]


@pytest.mark.parametrize("serializer", COMPILED, ids=lambda cls: cls.__name__)
def test_each_hot_read_shape_is_compiled_not_left_to_drf(serializer):
    assert issubclass(serializer, CompiledRepresentation)
    assert serializer.compiled()


def test_the_schema_properties_are_the_keys_each_endpoint_returns(jobs, client):
    schema = yaml.safe_load(client.get("/api/v1/schema/").content)
    api = client_for(jobs["owner"])
    full = jobs["full"]
    execution = full.executions.order_by("pk").first()
    calls = [
        ("/api/v1/jobs/", "/api/v1/jobs/"),
        (f"/api/v1/jobs/{full.pk}/", "/api/v1/jobs/{id}/"),
        (f"/api/v1/jobs/{full.pk}/splits/", "/api/v1/jobs/{job_pk}/splits/"),
        (f"/api/v1/jobs/{full.pk}/splits/0/", "/api/v1/jobs/{job_pk}/splits/{index}/"),
        ("/api/v1/executions/", "/api/v1/executions/"),
        (f"/api/v1/executions/{execution.pk}/", "/api/v1/executions/{id}/"),
        (f"/api/v1/jobs/{full.pk}/desc/", "/api/v1/jobs/{id}/desc/"),
        ("/api/v1/jobs/export/", "/api/v1/jobs/export/"),
        ("/api/v1/accounts/", "/api/v1/accounts/"),
        (f"/api/v1/accounts/{full.account_id}/", "/api/v1/accounts/{id}/"),
        ("/api/v1/languages/", "/api/v1/languages/"),
        ("/api/v1/voices/", "/api/v1/voices/"),
        ("/api/v1/topics/", "/api/v1/topics/"),
        ("/api/v1/clips/", "/api/v1/clips/"),
        ("/api/v1/auth/me/", "/api/v1/auth/me/"),
    ]
    for url, path in calls:
        response = api.get(url)
        assert response.status_code == 200, (url, response.content[:300])
        assert shape_mismatches(schema, response_schema(schema, path), response.json(), url) == []


def test_a_rich_job_fills_every_nested_shape_the_check_walks(jobs):
    """The schema check above only proves what the responses contain: the fixture's job has a value
    in every nested object it walks (nothing checked only as null)."""
    detail = client_for(jobs["owner"]).get(f"/api/v1/jobs/{jobs['full'].pk}/").json()
    for key in ("latest_execution", "language", "voice", "topic", "account"):
        assert isinstance(detail[key], dict), key
    assert detail["splits"][0]["images"] and detail["splits"][1]["clip"]


def test_compiled_output_is_drfs_own_output_of_the_same_fields(jobs):
    request = APIRequestFactory().get("/api/v1/jobs/")
    request.user = jobs["owner"]
    context = {"request": request}

    def both(serializer_class, instance) -> tuple[dict, dict]:
        serializer = serializer_class(context=context)
        return serializer.to_representation(instance), serializers.Serializer.to_representation(
            serializer, instance
        )

    rows = JobListSerializer.rows(Job.objects.order_by("pk"))
    instances = Job.objects.select_related("latest_execution").order_by("pk")
    pairs = [both(JobListSerializer, row) for row in rows]
    pairs += [both(JobListSerializer, job) for job in instances]
    pairs += [
        both(JobDetailSerializer, job) for job in JobDetailSerializer.detail_queryset(Job.objects.all())
    ]
    pairs += [both(SplitSerializer, row) for row in JobSplit.objects.select_related("clip")]
    pairs += [both(ExecutionDetailSerializer, row) for row in JobExecution.objects.all()]
    pairs += [both(SplitImageSerializer, {"seed": None})]
    assert len(pairs) == 3 + 3 + 3 + 2 + 3 + 1
    for compiled, drf in pairs:
        assert compiled == drf
        assert list(compiled) == list(drf)  # the same key order too
    assert [compiled for compiled, _drf in pairs[:3]] == [compiled for compiled, _drf in pairs[3:6]]


def test_list_rows_hold_only_what_the_fields_read_and_none_for_a_missing_render(jobs):
    row = JobListSerializer.rows(Job.objects.filter(pk=jobs["bare"].pk))[0]
    assert row["latest_execution"] is None
    assert set(row) == {
        "id",
        "title",
        "latest_execution",
        "latest_execution_id",
        "language_id",
        "voice_id",
        "topic_id",
        "account_id",
        "orientation",
        "speech_speed",
        "runorder",
        "team",
        "owner_id",
        "created_at",
        "updated_at",
    }
    assert row["team"] == {"slug": jobs["owner"].personal_team.slug}
    full = JobListSerializer.rows(Job.objects.filter(pk=jobs["full"].pk))[0]
    assert full["latest_execution"] == {"status": "SUCCESS", "detail": "Done", "progress": 100}


def test_rows_refuse_a_serializer_whose_fields_read_more_than_columns():
    with pytest.raises(TypeError, match="JobDetailSerializer has fields that read more than columns"):
        JobDetailSerializer.rows(Job.objects.none())


def test_the_list_and_the_detail_give_exactly_what_clients_got_before(jobs):
    """Fixed values for each kind of field: ids, text, a status the job takes from its latest render
    (NEW without one), nullable columns, times in ISO 8601 with Z, floats, the owner's UUID as text,
    the nested objects, a segment's pictures without the junk entry, signed links."""
    full, bare, owner = jobs["full"], jobs["bare"], jobs["owner"]
    api = client_for(owner)
    rows = {row["id"]: row for row in api.get("/api/v1/jobs/?page_size=50").json()["results"]}
    execution = full.latest_execution
    assert rows[bare.pk] == {
        "id": bare.pk,
        "title": "Bare",
        "status": "NEW",
        "status_detail": None,
        "progress": None,
        "latest_execution": None,
        "language": None,
        "voice": None,
        "topic": None,
        "account": None,
        "orientation": "horizontal",
        "speech_speed": 0.9,
        "runorder": 0,
        "team": owner.personal_team.slug,
        "owner": str(owner.pk),
        "created_at": "2025-03-04T05:06:07.123456Z",
        "updated_at": "2025-03-04T05:06:07.123456Z",
    }
    assert rows[full.pk] | {"language": 0, "voice": 0, "topic": 0, "account": 0} == {
        "id": full.pk,
        "title": "Walk",
        "status": "SUCCESS",
        "status_detail": "Done",
        "progress": 100,
        "latest_execution": execution.pk,
        "language": 0,
        "voice": 0,
        "topic": 0,
        "account": 0,
        "orientation": "horizontal",
        "speech_speed": 1.25,
        "runorder": -3,
        "team": owner.personal_team.slug,
        "owner": str(owner.pk),
        "created_at": "2025-03-04T05:06:07.123456Z",
        "updated_at": "2025-03-04T05:06:07.123456Z",
    }
    assert [rows[full.pk][key] for key in ("language", "voice", "topic", "account")] == [
        full.language_id,
        full.voice_id,
        full.topic_id,
        full.account_id,
    ]

    detail = api.get(f"/api/v1/jobs/{full.pk}/").json()
    clip = StockClip.objects.get()
    assert detail["language"] == {
        "id": full.language_id,
        "code": "zh-CN",
        "name": "中文",
        "platform": "espeak",
    }
    assert detail["voice"] == {
        "id": full.voice_id,
        "name": "Lin",
        "language": full.language_id,
        "reference_url": full.voice.reference.url,
    }
    assert detail["topic"] == {
        "id": full.topic_id,
        "name": "Health",
        "prompt_gen_image": "a calm landscape",
        "lora_name": "health",
        "real_clip_ratio": 0.25,
    }
    assert detail["account"] == {"id": full.account_id, "username": "walker", "platform": "youtube"}
    assert {key: detail[key] for key in ("content", "description", "publish_title", "extra", "deleted")} == {
        "content": "今天天气很好。我们去公园散步。",
        "description": "A walk.",
        "publish_title": "Walk in the park",
        "extra": {"title_text": "公园", "real_clip_ratio": 0.5},
        "deleted": False,
    }
    assert detail["splits"] == [
        {
            "id": full.splits.get(index=0).pk,
            "index": 0,
            "start_ms": 0,
            "end_ms": 1200,
            "duration_ms": 1200,
            "text": "今天。",
            "sentences": ["今天。"],
            "prompt": "a park",
            "images": [
                {
                    "key": "jobs/1/pictures/a.png",
                    "url": default_storage.url("jobs/1/pictures/a.png"),
                    "seed": 7,
                    "source": "flux",
                },
                {"key": "b.png", "url": default_storage.url("b.png"), "seed": None, "source": ""},
            ],
            "selected": "jobs/1/pictures/a.png",
            "selected_url": default_storage.url("jobs/1/pictures/a.png"),
            "clip": None,
            "updated_at": "2025-03-04T05:06:07.123456Z",
        },
        {
            "id": full.splits.get(index=1).pk,
            "index": 1,
            "start_ms": 1200,
            "end_ms": 3000,
            "duration_ms": 1800,
            "text": "散步。",
            "sentences": [],
            "prompt": "",
            "images": [],
            "selected": "",
            "selected_url": "",
            "clip": {"id": clip.pk, "title": "Sea", "duration_ms": 8000, "url": clip.file.url},
            "updated_at": "2025-03-04T05:06:07.123456Z",
        },
    ]
    rendered = detail["latest_execution"]
    assert set(rendered["urls"]) == {"video", "cover"}
    assert rendered | {"urls": {}} == {
        "id": execution.pk,
        "job": full.pk,
        "status": "SUCCESS",
        "detail": "Done",
        "progress": 100,
        "current_step": "",
        "worker_host": "",
        "retry_count": 0,
        "attempt": 2,
        "retry_at": None,
        "error_kind": "",
        "cancel_requested": False,
        "created_at": "2025-03-04T05:06:07.123456Z",
        "started_at": "2025-03-04T06:00:00Z",
        "finished_at": "2025-03-04T06:01:30.250000Z",
        "duration_s": 90.25,
        "heartbeat_at": None,
        "error": "",
        "steps": {
            "narration": {
                "status": "done",
                "started_at": None,
                "finished_at": None,
                "duration_s": None,
                "error": None,
            },
            "compose": {
                "status": "done",
                "started_at": None,
                "finished_at": None,
                "duration_s": 1.5,
                "error": None,
            },
        },
        "urls": {},
        "eta_s": None,
    }
    assert list(detail) == [*JobListSerializer.Meta.fields, "content", "description", "publish_title"] + [
        "extra",
        "splits",
        "deleted",
    ]


def test_a_page_of_the_list_is_one_query_for_its_rows(jobs, django_assert_max_num_queries):
    """Auth, the current team, count, the page's ids, then the rows with their latest render and team in
    one joined query."""
    api = client_for(jobs["owner"])
    api.get("/api/v1/jobs/")  # the token's user is looked up once per request either way
    with django_assert_max_num_queries(5):
        assert len(api.get("/api/v1/jobs/").json()["results"]) == 2


class _Who(CompiledRepresentation, serializers.Serializer):
    asked_by = serializers.SerializerMethodField()

    def get_asked_by(self, _row) -> int:
        return self.context["request"].user.pk


class _Outer(CompiledRepresentation, serializers.Serializer):
    one = _Who(source="*")
    many = _Who(source="items", many=True)


def test_nested_serializers_see_the_context_of_the_serializer_they_are_nested_in(db):
    first, second = make_user(), make_user()
    for user in (first, second):
        request = APIRequestFactory().get("/")
        request.user = user
        serializer = _Outer({"items": [1, 2]}, context={"request": request})
        assert serializer.data == {"one": {"asked_by": user.pk}, "many": [{"asked_by": user.pk}] * 2}
