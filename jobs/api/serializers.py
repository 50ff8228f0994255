"""Read serializers shape what clients see; write serializers only type-check, and the rules
themselves live in jobs.validation (through the services) and jobs.api.extra."""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.ownership import OwnedPrimaryKeyField, OwnedSerializer
from accounts.api.serializers import as_drf_error
from accounts.models import Account
from topics.api.serializers import TopicBriefSerializer
from topics.models import Topic
from voices.api.serializers import LanguageBriefSerializer, VoiceBriefSerializer
from voices.models import Language, Voice

from .. import services
from ..models import ExecutionStatus, Job, JobExecution, JobSplit, Orientation, StockClip
from .extra import JOB_EXTRA_JSON_SCHEMA, check_job_extra

INT_MIN, INT_MAX = -(2**31), 2**31 - 1  # runorder is a 32-bit integer column
NEW = "NEW"  # the status of a job that was never rendered
STATUS_CHOICES = [(NEW, "Never rendered"), *ExecutionStatus.choices]
# Wrapped in allOf so drf-spectacular keeps it inline instead of making a "Status" enum component,
# whose name would clash with the execution status enum's.
JOB_STATUS_SCHEMA = {"allOf": [{"type": "string", "enum": [value for value, _label in STATUS_CHOICES]}],
                     "description": "Status of the latest render; NEW when never rendered."}


# ---------------------------------------------------------------- executions


def _step_summary(steps: dict[str, Any]) -> dict[str, Any]:
    names = [*services.STEPS, *(name for name in steps if name not in services.STEPS)]
    summary = {}
    for name in names:
        record = steps.get(name)
        if isinstance(record, dict):
            summary[name] = {field: record.get(field) for field in
                             ("status", "started_at", "finished_at", "duration_s", "error")}
    return summary


class ExecutionSerializer(serializers.ModelSerializer):
    duration_s = serializers.SerializerMethodField(help_text="Seconds from start to finish (or until now).")

    class Meta:
        model = JobExecution
        fields = ["id", "job", "status", "detail", "progress", "current_step", "worker_host", "retry_count",
                  "cancel_requested", "created_at", "started_at", "finished_at", "duration_s"]
        read_only_fields = fields

    def get_duration_s(self, execution: JobExecution) -> float | None:
        duration = execution.duration
        return round(duration.total_seconds(), 3) if duration is not None else None


@extend_schema_field({
    "type": "object",
    "additionalProperties": {"type": "object", "properties": {
        "status": {"type": "string", "enum": ["running", "done", "reused", "failed", "cancelled"]},
        "started_at": {"type": "string", "format": "date-time", "nullable": True},
        "finished_at": {"type": "string", "format": "date-time", "nullable": True},
        "duration_s": {"type": "number", "nullable": True},
        "error": {"type": "string", "nullable": True},
    }},
    "description": "Per pipeline step, in order: status, times, duration and error.",
})
class StepsField(serializers.Field):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, steps: dict) -> dict:
        return _step_summary(steps or {})


class ExecutionDetailSerializer(ExecutionSerializer):
    steps = StepsField()
    urls = serializers.SerializerMethodField(
        help_text="Signed links to the results (video, cover, subtitles...)."
    )
    eta_s = serializers.SerializerMethodField(help_text="Seconds left, estimated from recent renders.")

    class Meta(ExecutionSerializer.Meta):
        fields = [*ExecutionSerializer.Meta.fields, "heartbeat_at", "error", "steps", "urls", "eta_s"]
        read_only_fields = fields

    def get_urls(self, execution: JobExecution) -> dict[str, str]:
        return services.execution_urls(execution)

    def get_eta_s(self, execution: JobExecution) -> float | None:
        return services.execution_eta(execution)


# ---------------------------------------------------------------- clips and splits


class ClipSerializer(OwnedSerializer):
    url = serializers.SerializerMethodField(help_text="A signed link to the video file.")

    class Meta:
        model = StockClip
        fields = ["id", "title", "url", "duration_ms", "width", "height", "tags", "source", "licence",
                  "owner", "shared", "created_at", "updated_at"]
        read_only_fields = ["duration_ms", "width", "height", "created_at", "updated_at"]

    def get_url(self, clip: StockClip) -> str:
        return services.artifact_url(clip.file.name) if clip.file else ""


class ClipUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="MP4, MOV, WebM or Matroska video (at most settings.API_CLIP_MAX_BYTES, 200 MB)."
    )
    title = serializers.CharField(max_length=255, required=False, allow_blank=True)
    tags = serializers.CharField(max_length=255, required=False, allow_blank=True,
                                 help_text="Comma-separated, e.g. landscape,sea")
    source = serializers.CharField(max_length=255, required=False, allow_blank=True)
    licence = serializers.CharField(max_length=255, required=False, allow_blank=True)


class ClipBriefSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = StockClip
        fields = ["id", "title", "duration_ms", "url"]

    def get_url(self, clip: StockClip) -> str:
        return services.artifact_url(clip.file.name) if clip.file else ""


class SplitImageSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="Storage key; send it as `selected` to show this picture.")
    url = serializers.CharField(help_text="A signed link to the picture.")
    seed = serializers.IntegerField(allow_null=True)
    source = serializers.CharField(help_text="flux, card or upload.")


class SplitSerializer(serializers.ModelSerializer):
    images = serializers.SerializerMethodField()
    selected_url = serializers.SerializerMethodField(
        help_text="A signed link to the chosen picture, or empty."
    )
    clip = ClipBriefSerializer(read_only=True, allow_null=True)
    duration_ms = serializers.IntegerField(read_only=True)

    class Meta:
        model = JobSplit
        fields = ["id", "index", "start_ms", "end_ms", "duration_ms", "text", "prompt", "images", "selected",
                  "selected_url", "clip", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(SplitImageSerializer(many=True))
    def get_images(self, split_row: JobSplit) -> list[dict[str, Any]]:
        return [
            {"key": image.get("key", ""), "url": services.artifact_url(image.get("key", "")),
             "seed": image.get("seed"), "source": image.get("source", "")}
            for image in split_row.images if isinstance(image, dict)
        ]

    def get_selected_url(self, split_row: JobSplit) -> str:
        return services.artifact_url(split_row.selected)


class SplitUpdateSerializer(serializers.Serializer):
    text = serializers.CharField(required=False, trim_whitespace=False,
                                 help_text="New narration text; the job's script changes with it.")
    prompt = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    selected = serializers.CharField(required=False,
                                     help_text="Key of one of the segment's `images` to show.")
    clip = OwnedPrimaryKeyField(queryset=StockClip.objects.all(), required=False, allow_null=True,
                                check_visibility=False,
                                help_text="A library clip to show instead; null for none.")


class SplitImageUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="PNG, JPEG or WebP, at most 5 MB.")
    select = serializers.BooleanField(default=True, help_text="Show the new picture at once.")


# ---------------------------------------------------------------- jobs


@extend_schema_field(JOB_EXTRA_JSON_SCHEMA)
class JobExtraField(serializers.JSONField):
    def to_internal_value(self, data):
        try:
            return check_job_extra(super().to_internal_value(data))
        except DjangoValidationError as error:
            raise as_drf_error(error) from error


def attach_latest_execution(job: Job) -> Job:
    """Load the job's latest execution once and set what the list's annotations would have."""
    execution = job.latest_execution
    job.loaded_latest_execution = execution
    job.latest_execution_id = execution.pk if execution else None
    job.latest_status = execution.status if execution else None
    job.latest_progress = execution.progress if execution else None
    job.latest_detail = execution.detail if execution else None
    return job


class JobListSerializer(serializers.ModelSerializer):
    """A row of the job list; the latest execution's fields come from annotations (one query)."""

    status = serializers.SerializerMethodField(
        help_text="Status of the latest render; NEW when never rendered."
    )
    status_detail = serializers.CharField(source="latest_detail", read_only=True, allow_null=True)
    progress = serializers.IntegerField(source="latest_progress", read_only=True, allow_null=True)
    latest_execution = serializers.IntegerField(source="latest_execution_id", read_only=True, allow_null=True)
    owner = serializers.UUIDField(source="owner_id", read_only=True, allow_null=True)
    # Plain ids (not related fields): the list is the API's hottest path.
    language = serializers.IntegerField(source="language_id", read_only=True, allow_null=True)
    voice = serializers.IntegerField(source="voice_id", read_only=True, allow_null=True)
    topic = serializers.IntegerField(source="topic_id", read_only=True, allow_null=True)
    account = serializers.IntegerField(source="account_id", read_only=True, allow_null=True)

    class Meta:
        model = Job
        fields = ["id", "title", "status", "status_detail", "progress", "latest_execution", "language",
                  "voice", "topic", "account", "orientation", "speech_speed", "runorder", "owner",
                  "created_at", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(JOB_STATUS_SCHEMA)
    def get_status(self, job: Job) -> str:
        return getattr(job, "latest_status", None) or NEW


class JobDetailSerializer(JobListSerializer):
    language = LanguageBriefSerializer(read_only=True, allow_null=True)
    voice = VoiceBriefSerializer(read_only=True, allow_null=True)
    topic = TopicBriefSerializer(read_only=True, allow_null=True)
    account = serializers.SerializerMethodField()
    extra = JobExtraField(read_only=True)
    splits = SplitSerializer(many=True, read_only=True)
    latest_execution = serializers.SerializerMethodField()
    deleted = serializers.BooleanField(source="is_deleted", read_only=True)

    class Meta(JobListSerializer.Meta):
        fields = [*JobListSerializer.Meta.fields, "content", "description", "publish_title", "extra",
                  "splits", "deleted"]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField(allow_null=True, help_text="id, username, platform"))
    def get_account(self, job: Job) -> dict[str, Any] | None:
        if job.account is None:
            return None
        return {"id": job.account.pk, "username": job.account.username, "platform": job.account.platform}

    @extend_schema_field(ExecutionDetailSerializer(allow_null=True))
    def to_representation(self, job: Job) -> dict[str, Any]:
        if not hasattr(job, "loaded_latest_execution"):
            attach_latest_execution(job)
        return super().to_representation(job)

    def get_latest_execution(self, job: Job) -> dict[str, Any] | None:
        execution = job.loaded_latest_execution
        return ExecutionDetailSerializer(execution, context=self.context).data if execution else None


class JobWriteSerializer(serializers.Serializer):
    """Types only: the rules (lengths, cleaning, ranges, whose rows) are jobs.validation's."""

    title = serializers.CharField(trim_whitespace=False, allow_blank=True, help_text="1-255 characters.")
    content = serializers.CharField(
        trim_whitespace=False, allow_blank=True,
        help_text="The script, 1-10000 characters after removing #@#editor notes#@# and control characters.",
    )
    description = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    publish_title = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    language = OwnedPrimaryKeyField(queryset=Language.objects.all(), required=False, allow_null=True,
                                    check_visibility=False)
    voice = OwnedPrimaryKeyField(queryset=Voice.objects.all(), required=False, allow_null=True,
                                 check_visibility=False)
    topic = OwnedPrimaryKeyField(queryset=Topic.objects.all(), required=False, allow_null=True,
                                 check_visibility=False)
    account = OwnedPrimaryKeyField(queryset=Account.objects.all(), required=False, allow_null=True,
                                   check_visibility=False)
    speech_speed = serializers.FloatField(required=False, help_text="0.5-2.0")
    orientation = serializers.ChoiceField(choices=Orientation.choices, required=False)
    runorder = serializers.IntegerField(required=False, min_value=INT_MIN, max_value=INT_MAX,
                                        help_text="Lower renders first.")
    extra = JobExtraField(required=False, help_text="Replaces the whole object when given.")


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
