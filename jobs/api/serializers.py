"""Read serializers shape what clients see; write serializers only type-check, and the rules
themselves live in jobs.validation (through the services), jobs.options and accounts.brand.

One module, past 500 lines: every read and write shape of the jobs API, side by side, so a
field's schema and its output are read together.
"""

from datetime import datetime
from typing import Any

from django.core.files.storage import default_storage
from django.core.validators import MaxLengthValidator
from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.ownership import OwnedPrimaryKeyField, OwnedSerializer
from accounts.models import Account
from accounts.plain_text import check_single_line
from jobs.files import execution_urls
from jobs.models import NEW, ExecutionStatus, Job, JobExecution, JobSplit, Orientation, StockClip
from jobs.options import JOB_EXTRA_JSON_SCHEMA
from jobs.records import step_records
from jobs.render.progress import execution_eta
from jobs.render.steps import STEPS
from jobs.validation import (
    CONTENT_MAX,
    DESCRIPTION_MAX,
    PROMPT_MAX,
    PUBLISH_TITLE_MAX,
    RUNORDER_MAX,
    RUNORDER_MESSAGE,
    RUNORDER_MIN,
    TITLE_MAX,
)
from topics.api.serializers import TopicBriefSerializer
from topics.models import Topic
from voices.api.serializers import LanguageBriefSerializer, VoiceBriefSerializer
from voices.models import Language, Voice

STATUS_CHOICES = [(NEW, "Never rendered"), *ExecutionStatus.choices]
# Wrapped in allOf so drf-spectacular keeps it inline instead of making a "Status" enum component,
# whose name would clash with the execution status enum's.
JOB_STATUS_SCHEMA = {
    "allOf": [{"type": "string", "enum": [value for value, _label in STATUS_CHOICES]}],
    "description": "Status of the latest render; NEW when never rendered.",
}


# ---------------------------------------------------------------- executions


def _step_summary(steps: dict[str, Any]) -> dict[str, Any]:
    """Each step's summary, in pipeline order (then any others)."""
    records = step_records(steps)
    names = [*(name for name in STEPS if name in records), *(name for name in records if name not in STEPS)]
    return {name: records[name].summary() for name in names}


class ExecutionSerializer(serializers.ModelSerializer):
    duration_s = serializers.SerializerMethodField(help_text="Seconds from start to finish (or until now).")
    error_kind = serializers.CharField(
        read_only=True,
        help_text=(
            "Why the last attempt ended: permanent, transient or unexpected; empty when nothing failed."
        ),
    )

    class Meta:
        model = JobExecution
        fields = [
            "id",
            "job",
            "status",
            "detail",
            "progress",
            "current_step",
            "worker_host",
            "retry_count",
            "attempt",
            "retry_at",
            "error_kind",
            "cancel_requested",
            "created_at",
            "started_at",
            "finished_at",
            "duration_s",
        ]
        read_only_fields = fields

    def get_duration_s(self, execution: JobExecution) -> float | None:
        duration = execution.duration
        return round(duration.total_seconds(), 3) if duration is not None else None


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "properties": {
                "status": {"type": "string", "enum": ["running", "done", "reused", "failed", "cancelled"]},
                "started_at": {"type": "string", "format": "date-time", "nullable": True},
                "finished_at": {"type": "string", "format": "date-time", "nullable": True},
                "duration_s": {"type": "number", "nullable": True},
                "error": {"type": "string", "nullable": True},
            },
        },
        "description": "Per pipeline step, in order: status, times, duration and error.",
    }
)
class StepsField(serializers.Field):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, steps: dict) -> dict:
        return _step_summary(steps or {})


def _time(value: datetime | None) -> str | None:
    """As DRF's DateTimeField gives it (ISO 8601 in the current time zone, Z for UTC), faster."""
    if value is None:
        return None
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class ExecutionDetailSerializer(ExecutionSerializer):
    """Written out by hand in `to_representation` (a job's detail is the API's second-hottest path,
    and DRF's per-field machinery cost more than the queries); the fields document it, and a test
    checks the two agree."""

    steps = StepsField()
    urls = serializers.SerializerMethodField(
        help_text="Signed links to the results (video, cover, subtitles...)."
    )
    eta_s = serializers.SerializerMethodField(help_text="Seconds left, estimated from recent renders.")

    class Meta(ExecutionSerializer.Meta):
        fields = [*ExecutionSerializer.Meta.fields, "heartbeat_at", "error", "steps", "urls", "eta_s"]
        read_only_fields = fields

    def to_representation(self, execution: JobExecution) -> dict[str, Any]:
        return {
            "id": execution.pk,
            "job": execution.job_id,
            "status": execution.status,
            "detail": execution.detail,
            "progress": execution.progress,
            "current_step": execution.current_step,
            "worker_host": execution.worker_host,
            "retry_count": execution.retry_count,
            "attempt": execution.attempt,
            "retry_at": _time(execution.retry_at),
            "error_kind": execution.error_kind,
            "cancel_requested": execution.cancel_requested,
            "created_at": _time(execution.created_at),
            "started_at": _time(execution.started_at),
            "finished_at": _time(execution.finished_at),
            "duration_s": self.get_duration_s(execution),
            "heartbeat_at": _time(execution.heartbeat_at),
            "error": execution.error,
            "steps": _step_summary(execution.steps or {}),
            "urls": self.get_urls(execution),
            "eta_s": self.get_eta_s(execution),
        }

    def get_urls(self, execution: JobExecution) -> dict[str, str]:
        return execution_urls(execution)

    def get_eta_s(self, execution: JobExecution) -> float | None:
        return execution_eta(execution)


# ---------------------------------------------------------------- clips and splits


def _url(key: str) -> str:
    """A signed link to a stored file; "" for none."""
    return default_storage.url(key) if key else ""


def _clip_url(clip: StockClip) -> str:
    return clip.file.url if clip.file else ""


class ClipSerializer(OwnedSerializer):
    url = serializers.SerializerMethodField(help_text="A signed link to the video file.")

    class Meta:
        model = StockClip
        fields = [
            "id",
            "title",
            "url",
            "duration_ms",
            "width",
            "height",
            "tags",
            "source",
            "licence",
            "team",
            "owner",
            "shared",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["duration_ms", "width", "height", "created_at", "updated_at"]
        extra_kwargs = {
            name: {"validators": [check_single_line]} for name in ("title", "tags", "source", "licence")
        }

    def get_url(self, clip: StockClip) -> str:
        return _clip_url(clip)


class ClipUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="MP4, MOV, WebM or Matroska video (at most settings.API_CLIP_MAX_BYTES, 200 MB)."
    )
    title = serializers.CharField(
        max_length=255, required=False, allow_blank=True, validators=[check_single_line]
    )
    tags = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=True,
        validators=[check_single_line],
        help_text="Comma-separated, e.g. landscape,sea",
    )
    source = serializers.CharField(
        max_length=255, required=False, allow_blank=True, validators=[check_single_line]
    )
    licence = serializers.CharField(
        max_length=255, required=False, allow_blank=True, validators=[check_single_line]
    )


class ClipBriefSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = StockClip
        fields = ["id", "title", "duration_ms", "url"]

    def get_url(self, clip: StockClip) -> str:
        return _clip_url(clip)


class MusicSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="Storage key: set it as a job's `extra.music`.")
    size = serializers.IntegerField(help_text="Bytes.")
    url = serializers.CharField(help_text="A signed link to the file.")


class SplitImageSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="Storage key; send it as `selected` to show this picture.")
    url = serializers.CharField(help_text="A signed link to the picture.")
    seed = serializers.IntegerField(allow_null=True)
    source = serializers.CharField(help_text="flux, card or upload.")


def _clip_brief(clip: StockClip | None) -> dict[str, Any] | None:
    if clip is None:
        return None
    return {"id": clip.pk, "title": clip.title, "duration_ms": clip.duration_ms, "url": _clip_url(clip)}


class SplitSerializer(serializers.ModelSerializer):
    """Written out by hand in `to_representation`, like the job's detail that nests it."""

    images = serializers.SerializerMethodField()
    selected_url = serializers.SerializerMethodField(
        help_text="A signed link to the chosen picture, or empty."
    )
    clip = ClipBriefSerializer(read_only=True, allow_null=True)
    duration_ms = serializers.IntegerField(read_only=True)
    sentences = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="The narration's sentences this segment shows, in order; split it between two of them.",
    )

    class Meta:
        model = JobSplit
        fields = [
            "id",
            "index",
            "start_ms",
            "end_ms",
            "duration_ms",
            "text",
            "sentences",
            "prompt",
            "images",
            "selected",
            "selected_url",
            "clip",
            "updated_at",
        ]
        read_only_fields = fields

    def to_representation(self, split_row: JobSplit) -> dict[str, Any]:
        return {
            "id": split_row.pk,
            "index": split_row.index,
            "start_ms": split_row.start_ms,
            "end_ms": split_row.end_ms,
            "duration_ms": split_row.duration_ms,
            "text": split_row.text,
            "sentences": list(split_row.sentences),
            "prompt": split_row.prompt,
            "images": self.get_images(split_row),
            "selected": split_row.selected,
            "selected_url": self.get_selected_url(split_row),
            "clip": _clip_brief(split_row.clip),
            "updated_at": _time(split_row.updated_at),
        }

    @extend_schema_field(SplitImageSerializer(many=True))
    def get_images(self, split_row: JobSplit) -> list[dict[str, Any]]:
        return [
            {
                "key": image.get("key", ""),
                "url": _url(image.get("key", "")),
                "seed": image.get("seed"),
                "source": image.get("source", ""),
            }
            for image in split_row.images
            if isinstance(image, dict)
        ]

    def get_selected_url(self, split_row: JobSplit) -> str:
        return _url(split_row.selected)


class SplitUpdateSerializer(serializers.Serializer):
    text = serializers.CharField(
        required=False,
        trim_whitespace=False,
        help_text="New narration text; the job's script changes with it.",
    )
    prompt = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=PROMPT_MAX,
        help_text="The picture prompt; control characters are removed.",
    )
    selected = serializers.CharField(
        required=False, help_text="Key of one of the segment's `images` to show."
    )
    clip = OwnedPrimaryKeyField(
        queryset=StockClip.objects.all(),
        required=False,
        allow_null=True,
        check_visibility=False,
        help_text="A library clip to show instead; null for none.",
    )


class SplitDivideSerializer(serializers.Serializer):
    at = serializers.IntegerField(
        min_value=1,
        max_value=CONTENT_MAX,  # a sentence has at least one character
        help_text="Split after this sentence of the segment (1-based): 1 to the number of its sentences - 1.",
    )


class SplitPreviewSerializer(serializers.Serializer):
    url = serializers.CharField(help_text="A link to the segment's preview MP4.")


class ResplitSerializer(serializers.Serializer):
    kept = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="Indexes (before) of the segments that kept their choices.",
    )
    dropped = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="Indexes (before) of the segments regrouped, choices and all.",
    )
    splits = SplitSerializer(many=True, help_text="The new storyboard.")


class SplitImageUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="PNG, JPEG or WebP, at most 5 MB.")
    select = serializers.BooleanField(default=True, help_text="Show the new picture at once.")


# ---------------------------------------------------------------- jobs


@extend_schema_field(JOB_EXTRA_JSON_SCHEMA)
class JobExtraField(serializers.JSONField):
    """Any JSON here; its keys are checked by jobs.validation, through the services."""


class JobListSerializer(serializers.ModelSerializer):
    """A row of the job list, written out by hand in `to_representation` from a `.values(*COLUMNS)`
    row: the list is the API's hottest path, and DRF's per-field machinery cost more than its
    queries. The fields document it; a test checks that both give the same."""

    COLUMNS = (
        "id",
        "title",
        "latest_execution__status",
        "latest_execution__detail",
        "latest_execution__progress",
        "latest_execution_id",
        "language_id",
        "voice_id",
        "topic_id",
        "account_id",
        "orientation",
        "speech_speed",
        "runorder",
        "team__slug",
        "owner_id",
        "created_at",
        "updated_at",
    )

    status = serializers.SerializerMethodField(
        help_text="Status of the latest render; NEW when never rendered."
    )
    status_detail = serializers.CharField(source="latest_execution.detail", read_only=True, allow_null=True)
    progress = serializers.IntegerField(source="latest_execution.progress", read_only=True, allow_null=True)
    latest_execution = serializers.IntegerField(source="latest_execution_id", read_only=True, allow_null=True)
    team = serializers.CharField(
        source="team.slug",
        read_only=True,
        allow_null=True,
        help_text="The team's slug; null: a shared preset.",
    )
    owner = serializers.UUIDField(source="owner_id", read_only=True, allow_null=True)
    language = serializers.IntegerField(source="language_id", read_only=True, allow_null=True)
    voice = serializers.IntegerField(source="voice_id", read_only=True, allow_null=True)
    topic = serializers.IntegerField(source="topic_id", read_only=True, allow_null=True)
    account = serializers.IntegerField(source="account_id", read_only=True, allow_null=True)

    class Meta:
        model = Job
        fields = [
            "id",
            "title",
            "status",
            "status_detail",
            "progress",
            "latest_execution",
            "language",
            "voice",
            "topic",
            "account",
            "orientation",
            "speech_speed",
            "runorder",
            "team",
            "owner",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def to_representation(self, row: dict[str, Any]) -> dict[str, Any]:
        owner = row["owner_id"]
        return {
            "id": row["id"],
            "title": row["title"],
            "status": row["latest_execution__status"] or NEW,
            "status_detail": row["latest_execution__detail"],
            "progress": row["latest_execution__progress"],
            "latest_execution": row["latest_execution_id"],
            "language": row["language_id"],
            "voice": row["voice_id"],
            "topic": row["topic_id"],
            "account": row["account_id"],
            "orientation": row["orientation"],
            "speech_speed": row["speech_speed"],
            "runorder": row["runorder"],
            "team": row["team__slug"],
            "owner": str(owner) if owner is not None else None,
            "created_at": _time(row["created_at"]),
            "updated_at": _time(row["updated_at"]),
        }

    @extend_schema_field(JOB_STATUS_SCHEMA)
    def get_status(self, job: Job) -> str:
        return job.latest_execution.status if job.latest_execution else NEW


class JobDetailSerializer(JobListSerializer):
    """Written out by hand in `to_representation` from a job loaded by `detail_queryset`."""

    language = LanguageBriefSerializer(read_only=True, allow_null=True)
    voice = VoiceBriefSerializer(read_only=True, allow_null=True)
    topic = TopicBriefSerializer(read_only=True, allow_null=True)
    account = serializers.SerializerMethodField()
    extra = JobExtraField(read_only=True)
    splits = SplitSerializer(many=True, read_only=True)
    latest_execution = ExecutionDetailSerializer(read_only=True, allow_null=True)
    deleted = serializers.BooleanField(source="is_deleted", read_only=True)

    class Meta(JobListSerializer.Meta):
        fields = [
            *JobListSerializer.Meta.fields,
            "content",
            "description",
            "publish_title",
            "extra",
            "splits",
            "deleted",
        ]
        read_only_fields = fields

    @staticmethod
    def detail_queryset(jobs: QuerySet[Job]) -> QuerySet[Job]:
        """What `to_representation` reads, in two queries."""
        splits = JobSplit.objects.select_related("clip").order_by("index")
        return jobs.select_related(
            "language", "voice", "topic", "account", "latest_execution", "team"
        ).prefetch_related(Prefetch("splits", queryset=splits))

    def to_representation(self, job: Job) -> dict[str, Any]:
        execution, language, voice, topic = job.latest_execution, job.language, job.voice, job.topic
        split = SplitSerializer(context=self.context)
        return {
            "id": job.pk,
            "title": job.title,
            "status": execution.status if execution else NEW,
            "status_detail": execution.detail if execution else None,
            "progress": execution.progress if execution else None,
            "latest_execution": ExecutionDetailSerializer(context=self.context).to_representation(execution)
            if execution
            else None,
            "language": {
                "id": language.pk,
                "code": language.code,
                "name": language.name,
                "platform": language.platform,
            }
            if language
            else None,
            "voice": {
                "id": voice.pk,
                "name": voice.name,
                "language": voice.language_id,
                "reference_url": voice.reference.url if voice.reference else "",
            }
            if voice
            else None,
            "topic": {
                "id": topic.pk,
                "name": topic.name,
                "prompt_gen_image": topic.prompt_gen_image,
                "lora_name": topic.lora_name,
                "real_clip_ratio": topic.real_clip_ratio,
            }
            if topic
            else None,
            "account": self.get_account(job),
            "orientation": job.orientation,
            "speech_speed": job.speech_speed,
            "runorder": job.runorder,
            "team": job.team.slug if job.team is not None else None,
            "owner": str(job.owner_id) if job.owner_id is not None else None,
            "created_at": _time(job.created_at),
            "updated_at": _time(job.updated_at),
            "content": job.content,
            "description": job.description,
            "publish_title": job.publish_title,
            "extra": job.extra,
            "splits": [split.to_representation(split_row) for split_row in job.splits.all()],
            "deleted": job.is_deleted,
        }

    @extend_schema_field(serializers.DictField(allow_null=True, help_text="id, username, platform"))
    def get_account(self, job: Job) -> dict[str, Any] | None:
        if job.account is None:
            return None
        return {"id": job.account.pk, "username": job.account.username, "platform": job.account.platform}


class SchemaMaxLength(MaxLengthValidator):
    """Puts a limit in the schema (maxLength) that jobs.validation checks itself, after cleaning and in
    the words the admin and the importers show too."""

    def __call__(self, value: Any) -> None:
        return None


class JobWriteSerializer(serializers.Serializer):
    """Types only: the rules (lengths, cleaning, ranges, whose rows) are jobs.validation's."""

    title = serializers.CharField(
        trim_whitespace=False,
        allow_blank=True,
        validators=[SchemaMaxLength(TITLE_MAX)],
        help_text=f"1-{TITLE_MAX} characters; control characters are removed.",
    )
    content = serializers.CharField(
        trim_whitespace=False,
        allow_blank=True,
        help_text="The script, 1-10000 characters after removing #@#editor notes#@# and control characters.",
    )
    description = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        validators=[SchemaMaxLength(DESCRIPTION_MAX)],
        help_text=f"Published with the video: at most {DESCRIPTION_MAX} characters (YouTube's limit) after "
        "removing control characters (tabs and line breaks stay).",
    )
    publish_title = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        validators=[SchemaMaxLength(PUBLISH_TITLE_MAX)],
        help_text=f"The video's title where it is published (empty: the title): one line of at most "
        f"{PUBLISH_TITLE_MAX} characters (YouTube's limit); control characters are removed.",
    )
    language = OwnedPrimaryKeyField(
        queryset=Language.objects.all(), required=False, allow_null=True, check_visibility=False
    )
    voice = OwnedPrimaryKeyField(
        queryset=Voice.objects.all(), required=False, allow_null=True, check_visibility=False
    )
    topic = OwnedPrimaryKeyField(
        queryset=Topic.objects.all(), required=False, allow_null=True, check_visibility=False
    )
    account = OwnedPrimaryKeyField(
        queryset=Account.objects.all(), required=False, allow_null=True, check_visibility=False
    )
    speech_speed = serializers.FloatField(required=False, help_text="0.5-2.0")
    orientation = serializers.ChoiceField(choices=Orientation.choices, required=False)
    runorder = serializers.IntegerField(
        required=False,
        min_value=RUNORDER_MIN,
        max_value=RUNORDER_MAX,
        error_messages={"min_value": RUNORDER_MESSAGE, "max_value": RUNORDER_MESSAGE},
        help_text=f"Lower renders first; {RUNORDER_MIN} to {RUNORDER_MAX}.",
    )
    extra = JobExtraField(required=False, help_text="Replaces the whole object when given.")


class JobCreateSerializer(JobWriteSerializer):
    render = serializers.BooleanField(
        required=False,
        default=False,
        write_only=True,
        help_text="Queue the job's render in the same call (as POST .../render/ would).",
    )


class JobBatchSerializer(serializers.Serializer):
    """Documents the batch body; each row is then checked as a single create's body."""

    jobs = JobWriteSerializer(many=True, help_text="The jobs, each as POST /api/v1/jobs/ takes one.")
    render = serializers.BooleanField(required=False, default=False, help_text="Queue every job's render.")


class JobBatchResultSerializer(serializers.Serializer):
    jobs = JobDetailSerializer(many=True, help_text="The created jobs, in the order sent.")


class JobDescriptionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    publish_title = serializers.CharField()
    description = serializers.CharField()
    links = serializers.DictField(child=serializers.CharField(), help_text="Signed links by result name.")
    text = serializers.CharField(help_text="Ready to paste: publish title, description and the links.")


class JobExportRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    publish_title = serializers.CharField()
    description = serializers.CharField()
    status = serializers.SerializerMethodField()
    video_url = serializers.CharField()
    cover_url = serializers.CharField()
    subtitles_url = serializers.CharField()

    @extend_schema_field(JOB_STATUS_SCHEMA)
    def get_status(self, row: dict) -> str:
        return row["status"]


class JobPrioritySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    runorder = serializers.IntegerField()
