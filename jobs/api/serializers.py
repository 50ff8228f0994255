"""Read serializers shape what clients see; write serializers only type-check, and the rules
themselves live in jobs.validation (through the services), jobs.options and accounts.brand.

Each read shape is described once, by its declared fields: drf-spectacular makes the schema from
them, and the output comes from them too (through accounts.api.representation, which compiles them
into a fast path for the list and the detail, the API's hottest paths).

One module, past 500 lines: every read and write shape of the jobs API, side by side.
"""

from typing import Any

from django.core.files.storage import default_storage
from django.core.validators import MaxLengthValidator
from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.ownership import OwnedPrimaryKeyField, OwnedSerializer
from accounts.api.representation import CompiledRepresentation
from accounts.api.serializers import AccountBriefSerializer
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


class ExecutionSerializer(CompiledRepresentation, serializers.ModelSerializer):
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


STEPS_SCHEMA = {
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


class ExecutionDetailSerializer(ExecutionSerializer):
    steps = serializers.SerializerMethodField()
    urls = serializers.SerializerMethodField(
        help_text="Signed links to the results (video, cover, subtitles...)."
    )
    eta_s = serializers.SerializerMethodField(help_text="Seconds left, estimated from recent renders.")

    class Meta(ExecutionSerializer.Meta):
        fields = [*ExecutionSerializer.Meta.fields, "heartbeat_at", "error", "steps", "urls", "eta_s"]
        read_only_fields = fields

    @extend_schema_field(STEPS_SCHEMA)
    def get_steps(self, execution: JobExecution) -> dict[str, Any]:
        return _step_summary(execution.steps or {})

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


class ClipBriefSerializer(CompiledRepresentation, serializers.ModelSerializer):
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


class SplitImageListSerializer(serializers.ListSerializer):
    def to_representation(self, images: list[Any]) -> list[dict[str, Any]]:
        """The entries that are objects: anything else in the JSON is no picture."""
        return super().to_representation([image for image in images if isinstance(image, dict)])


class SplitImageSerializer(CompiledRepresentation, serializers.Serializer):
    """A candidate picture of a segment (an entry of its `images`)."""

    key = serializers.CharField(
        read_only=True, default="", help_text="Storage key; send it as `selected` to show this picture."
    )
    url = serializers.SerializerMethodField(help_text="A signed link to the picture.")
    seed = serializers.IntegerField(read_only=True, allow_null=True)
    source = serializers.CharField(read_only=True, default="", help_text="flux, card or upload.")

    class Meta:
        list_serializer_class = SplitImageListSerializer

    def get_url(self, image: dict[str, Any]) -> str:
        return _url(image.get("key", ""))


class SplitSerializer(CompiledRepresentation, serializers.ModelSerializer):
    images = SplitImageSerializer(many=True, read_only=True)
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


@extend_schema_field(JOB_STATUS_SCHEMA)
class JobStatusField(serializers.CharField):
    """The status of a job's latest render; give it `default=NEW` where the job may have none."""


class JobListSerializer(CompiledRepresentation, serializers.ModelSerializer):
    """A row of the job list."""

    # The list is the API's hottest path: its page is read with `rows()`, no model instances.

    status = JobStatusField(
        source="latest_execution.status",
        read_only=True,
        default=NEW,
        help_text="Status of the latest render; NEW when never rendered.",
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


class JobDetailSerializer(JobListSerializer):
    """A job with its storyboard and latest render."""

    language = LanguageBriefSerializer(read_only=True, allow_null=True)
    voice = VoiceBriefSerializer(read_only=True, allow_null=True)
    topic = TopicBriefSerializer(read_only=True, allow_null=True)
    account = AccountBriefSerializer(read_only=True, allow_null=True)
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
        """What the fields read, in two queries."""
        splits = JobSplit.objects.select_related("clip").order_by("index")
        return jobs.select_related(
            "language", "voice", "topic", "account", "latest_execution", "team"
        ).prefetch_related(Prefetch("splits", queryset=splits))


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
    status = JobStatusField(read_only=True)
    video_url = serializers.CharField()
    cover_url = serializers.CharField()
    subtitles_url = serializers.CharField()


class JobPrioritySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    runorder = serializers.IntegerField()
