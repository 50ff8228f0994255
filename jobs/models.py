"""The jobs app's rows: jobs, executions, segments, clips, publications, webhooks and clean-up runs.

One module past 500 lines because Django finds an app's models in models.py, and fields with small
derived properties only (anything touching several rows, files or the network is in the services).
"""

from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from accounts.models import Account, Owned, OwnedQuerySet, Team
from topics.models import Topic
from voices.models import Language, Voice

SPEECH_SPEED_MIN = 0.5
SPEECH_SPEED_MAX = 2.0


class Orientation(models.TextChoices):
    HORIZONTAL = "horizontal", "Horizontal 1360x768"
    VERTICAL = "vertical", "Vertical 768x1360"


FRAME_SIZES = {Orientation.HORIZONTAL: (1360, 768), Orientation.VERTICAL: (768, 1360)}


class JobQuerySet(OwnedQuerySet):
    def alive(self) -> "JobQuerySet":
        return self.filter(deleted_at__isnull=True)


class Job(Owned):
    """What to render. Each render is a JobExecution; a job can be rendered many times."""

    runorder = models.IntegerField(default=0, help_text="Lower runs first.")
    title = models.CharField(max_length=255)
    content = models.TextField(max_length=10000)
    description = models.TextField(blank=True)
    publish_title = models.TextField(blank=True)
    language = models.ForeignKey(Language, null=True, blank=True, on_delete=models.PROTECT)
    voice = models.ForeignKey(Voice, null=True, blank=True, on_delete=models.PROTECT)
    topic = models.ForeignKey(Topic, null=True, blank=True, on_delete=models.PROTECT)
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.PROTECT)
    speech_speed = models.FloatField(
        default=0.9,
        validators=[MinValueValidator(SPEECH_SPEED_MIN), MaxValueValidator(SPEECH_SPEED_MAX)],
    )
    orientation = models.CharField(max_length=16, choices=Orientation.choices, default=Orientation.HORIZONTAL)
    narration_audio = models.FileField(
        upload_to="jobs/narration/",
        blank=True,
        help_text="Optional narration to use instead of text-to-speech.",
    )
    extra = models.JSONField(
        default=dict,
        blank=True,
        help_text="h2v, index_text, title_text, desc_text, real_clip_ratio, segment_target_ms, music",
    )
    deleted_at = models.DateTimeField(null=True, blank=True)
    # The newest render, kept by JobExecution.save: lists and status filters join it instead of
    # looking for each job's newest execution.
    latest_execution = models.ForeignKey(
        "JobExecution",
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    objects = JobQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["team", "deleted_at", "id"], name="job_team_deleted_id"),
            models.Index(fields=["account", "deleted_at", "id"], name="job_account_deleted_id"),
            models.Index(fields=["language", "deleted_at", "id"], name="job_language_deleted_id"),
            models.Index(fields=["created_at"], name="job_created"),
            # The job list's order over live jobs: walked in order, teams read from the index itself
            # (one team's list, or everyone's); and per team, where one team has few of many jobs.
            models.Index(
                fields=["runorder", "id"],
                include=["team"],
                name="job_alive_runorder",
                condition=Q(deleted_at__isnull=True),
            ),
            models.Index(
                fields=["team", "runorder", "id"],
                name="job_team_alive_runorder",
                condition=Q(deleted_at__isnull=True),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(speech_speed__gte=SPEECH_SPEED_MIN) & Q(speech_speed__lte=SPEECH_SPEED_MAX),
                name="job_speech_speed_range",
            ),
        ]
        ordering = ["runorder", "id"]

    def __str__(self) -> str:
        return self.title

    @property
    def frame_size(self) -> tuple[int, int]:
        """The video's frame: vertical for h2v (horizontal pictures shown in a vertical frame)."""
        return FRAME_SIZES[Orientation.VERTICAL] if self.extra.get("h2v") else self.picture_size

    @property
    def picture_size(self) -> tuple[int, int]:
        """The size the segments' pictures are made at: horizontal for h2v, else the orientation's."""
        return (
            FRAME_SIZES[Orientation.HORIZONTAL]
            if self.extra.get("h2v")
            else FRAME_SIZES[Orientation(self.orientation)]
        )

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def latest_success(self) -> "JobExecution | None":
        """The render whose files are published, exported and shown as the job's result."""
        return self.executions.successes().first()


class ExecutionStatus(models.TextChoices):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


ACTIVE_STATUSES = (ExecutionStatus.PENDING, ExecutionStatus.RUNNING)


class Resource(models.TextChoices):
    """What a render step runs on; each is served by the django-q2 cluster its setting names
    (CPU_CLUSTER, GPU_CLUSTER)."""

    CPU = "cpu"  # narration engines, subtitles, composition, cover
    GPU = "gpu"  # model steps: Flux pictures, FunASR alignment, image-to-video


class ErrorKind(models.TextChoices):
    """Why an attempt ended, as far as a retry is concerned."""

    PERMANENT = "permanent"  # a retry cannot help: bad input, a missing file, a backend's refusal
    TRANSIENT = (
        "transient"  # a retry may: a timeout, a 5xx, a lost connection, a storage error, a dead worker
    )
    UNEXPECTED = (
        "unexpected"  # no rule knows it (a bug?): retried like a transient one, logged with its traceback
    )


NEW = "NEW"  # the status of a job that was never rendered


class JobExecutionQuerySet(models.QuerySet):
    def successes(self) -> "JobExecutionQuerySet":
        """Successful renders, newest first: the first of a job's is its latest success."""
        return self.filter(status=ExecutionStatus.SUCCESS).order_by("-created_at", "-id")

    def bulk_create(self, objs, *args, **kwargs) -> list["JobExecution"]:
        """Like save(), keeps each job's latest_execution: the last of the job's new rows."""
        created = super().bulk_create(objs, *args, **kwargs)
        newest = {execution.job_id: execution for execution in created}
        jobs = [Job(pk=job_id, latest_execution=execution) for job_id, execution in newest.items()]
        Job.objects.bulk_update(jobs, ["latest_execution"], batch_size=1000)
        return created


class JobExecution(models.Model):
    """One render of a job: its status, progress, per-step records and stored results."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="executions")
    status = models.CharField(max_length=16, choices=ExecutionStatus.choices, default=ExecutionStatus.PENDING)
    detail = models.CharField(max_length=500, blank=True, help_text="What is happening, or happened.")
    progress = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(100)])
    current_step = models.CharField(max_length=32, blank=True)
    steps = models.JSONField(default=dict, blank=True, help_text="Per step: status, times, outputs, error.")
    results = models.JSONField(default=dict, blank=True, help_text="Storage keys of the artifacts.")
    worker_host = models.CharField(max_length=255, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    retry_count = models.PositiveIntegerField(
        default=0, help_text="Retries of any kind: a step retried in place, an attempt retried or taken over."
    )
    attempt = models.PositiveIntegerField(
        default=0,
        help_text="Attempts started, raised by every claim but the one that continues a hand-off. Also "
        "the claim's fencing token: a worker writes to the execution only while it still holds the "
        "attempt it claimed (a worker that hands off writes nothing more).",
    )
    needs = models.CharField(
        max_length=8,
        choices=Resource.choices,
        default=Resource.CPU,
        help_text="The resource of the step the execution is at: only a worker serving it claims the execution.",
    )
    handed_off = models.BooleanField(
        default=False,
        help_text="Waiting for a worker of another cluster in the middle of an attempt: its next claim "
        "continues the attempt instead of starting a new one.",
    )
    retry_at = models.DateTimeField(
        null=True, blank=True, help_text="A PENDING execution waits until then before its next attempt."
    )
    error_kind = models.CharField(max_length=16, choices=ErrorKind.choices, blank=True)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = JobExecutionQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["job", "status"], name="execution_job_status"),
            models.Index(fields=["status", "created_at"], name="execution_status_created"),
            models.Index(fields=["worker_host", "status"], name="execution_worker_status"),
            # Fair share reads the executions that finished in its window (jobs.render.fairshare).
            models.Index(fields=["finished_at"], name="execution_finished"),
        ]
        constraints = [
            # One render of a job at a time, enforced by the database.
            models.UniqueConstraint(
                fields=["job"],
                condition=Q(status__in=["PENDING", "RUNNING"]),
                name="execution_one_active_per_job",
            ),
            models.CheckConstraint(condition=Q(progress__lte=100), name="execution_progress_range"),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.job_id} {self.status}"

    def save(self, *args, **kwargs) -> None:
        adding = self._state.adding
        super().save(*args, **kwargs)
        if adding:
            Job.objects.filter(pk=self.job_id).update(latest_execution=self)
            if JobExecution.job.is_cached(self):
                self.job.latest_execution = self

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def duration(self) -> timedelta | None:
        if self.started_at is None:
            return None
        return (self.finished_at or self.updated_at) - self.started_at


class ChunkStatus(models.TextChoices):
    WAITING = "waiting"
    MAKING = "making"
    DONE = "done"
    FAILED = "failed"


class ChunkWork(models.Model):
    """One chunk of a composition that any CPU worker may make (jobs.render.fanout): the chunk job as
    JSON (media_engine.chunks.describe), who is making it and since when it last said so. The rows
    live while their composition is planned and made; its planner deletes them once it assembled."""

    execution = models.ForeignKey(JobExecution, on_delete=models.CASCADE, related_name="chunk_work")
    name = models.CharField(max_length=100)
    description = models.JSONField()
    seconds = models.FloatField()
    status = models.CharField(max_length=10, choices=ChunkStatus.choices, default=ChunkStatus.WAITING)
    worker = models.CharField(max_length=255, blank=True)  # host:pid that claimed or made it
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["execution", "name"], name="chunk_work_once_per_execution")
        ]
        indexes = [models.Index(fields=["execution", "status"], name="chunk_work_execution_status")]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class StockClip(Owned):
    """A real video clip (landscape, animal, city...) used for some segments instead of a picture."""

    file = models.FileField(upload_to="clips/")
    title = models.CharField(max_length=255, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    tags = models.CharField(max_length=255, blank=True, help_text="Comma-separated, e.g. landscape,sea")
    source = models.CharField(max_length=255, blank=True, help_text="Where the clip comes from.")
    licence = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True, help_text="Searched with the title and tags.")
    # A clip downloaded from a stock provider (media_engine.stock): who made it, where its page is, and
    # the search that found it. `provider` + `external_id` is unique, so a file is downloaded once.
    provider = models.CharField(max_length=32, blank=True, help_text="pexels, pixabay; empty for an import.")
    external_id = models.CharField(max_length=64, blank=True)
    author = models.CharField(max_length=255, blank=True)
    page_url = models.URLField(max_length=500, blank=True)
    search = models.CharField(max_length=255, blank=True, help_text="The search that found it.")
    sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    thumbnail = models.FileField(upload_to="clips/thumbnails/", blank=True)
    shots = models.JSONField(
        null=True,
        blank=True,
        help_text="[[start_ms, end_ms], ...]: its shots without fade-ins (media_engine.scenes); null: not read yet.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "external_id"], condition=~Q(provider=""), name="clip_unique_provider_id"
            ),
        ]

    def __str__(self) -> str:
        return self.title or self.file.name

    @property
    def tag_set(self) -> frozenset[str]:
        return frozenset(tag.strip().lower() for tag in self.tags.split(",") if tag.strip())


class JobSplit(models.Model):
    """One segment of a job's video: its time range, text, prompt and picture or clip."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="splits")
    index = models.PositiveIntegerField()
    start_ms = models.PositiveIntegerField()
    end_ms = models.PositiveIntegerField()
    text = models.TextField()
    sentences = models.JSONField(
        default=list,
        blank=True,
        help_text="The narration's sentences this segment shows, in order: what keeps it across edits.",
    )
    prompt = models.TextField(blank=True)
    prompt_edited = models.BooleanField(
        default=False,
        help_text="The operator wrote the prompt: it stays when the text changes (else it follows it).",
    )
    images = models.JSONField(
        default=list, blank=True, help_text="Candidate pictures: [{key, seed, source}]."
    )
    selected = models.CharField(max_length=500, blank=True, help_text="Storage key of the chosen picture.")
    clip = models.ForeignKey(
        StockClip,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="A real clip shown instead of a picture.",
    )
    keywords = models.JSONField(default=list, blank=True, help_text="Footage search terms, best first.")
    clip_candidates = models.JSONField(
        default=list,
        blank=True,
        help_text="Clips that fit the segment, best first: [{id, score}].",
    )
    variant = models.PositiveIntegerField(
        default=0, help_text="Raised by 'regenerate pictures' so new pictures get new seeds."
    )
    animation = models.JSONField(
        default=dict,
        blank=True,
        help_text="The moving clip the render made from the selected picture: {key, picture}.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="split_unique_index"),
            models.CheckConstraint(condition=Q(end_ms__gte=models.F("start_ms")), name="split_time_order"),
        ]
        ordering = ["job", "index"]

    def __str__(self) -> str:
        return f"{self.job_id}#{self.index}"

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms

    # A picture's `source` in `images`: a card the render drew (CARD), a picture a model generated,
    # or an upload. The render remakes the first two; an operator's upload stays.
    CARD = "card"
    FLUX = "flux"
    GENERATED = (CARD, FLUX)

    @property
    def card_keys(self) -> set[str]:
        """The keys of the picture cards the render drew for this segment."""
        return {image.get("key") for image in self.images if image.get("source") == self.CARD}

    def images_except(self, sources: tuple[str, ...]) -> list[dict]:
        """The segment's pictures but those of the given sources."""
        return [image for image in self.images if image.get("source") not in sources]

    @property
    def moving_clip(self) -> str:
        """The storage key of the moving clip made from the picture shown now, or "" (none, or one
        made from a picture the operator has since replaced)."""
        animation = self.animation or {}
        return animation.get("key", "") if self.selected and animation.get("picture") == self.selected else ""

    @property
    def shown(self) -> tuple[str, str]:
        """(storage key, "clip" or "still") of what the segment shows: a real clip, else the moving
        clip of its picture, else the picture."""
        if self.clip_id:
            return self.clip.file.name, "clip"
        if self.moving_clip:
            return self.moving_clip, "clip"
        return self.selected, "still"


class CleanupRun(models.Model):
    """One run of the storage clean-up: what it removed (or, in a dry run, would have)."""

    class Mode(models.TextChoices):
        AUTO = "auto"
        MANUAL = "manual"

    mode = models.CharField(max_length=16, choices=Mode.choices)
    dry_run = models.BooleanField(default=False)
    skipped = models.BooleanField(default=False, help_text="Auto mode found nothing due yet.")
    files_removed = models.PositiveIntegerField(default=0)
    bytes_freed = models.PositiveBigIntegerField(default=0)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.mode} clean-up {self.created_at:%Y-%m-%d %H:%M}"


class PublicationStatus(models.TextChoices):
    QUEUED = "QUEUED"  # a worker takes it next
    WAITING = "WAITING"  # until scheduled_for: the next quota day, or a back-off after a rate limit or 5xx
    RUNNING = "RUNNING"
    PUBLISHED = "PUBLISHED"
    FAILED = "FAILED"


class Privacy(models.TextChoices):
    PRIVATE = "private"
    UNLISTED = "unlisted"
    PUBLIC = "public"


class Publication(models.Model):
    """One render published to its job's channel (jobs.publishing.publications): what was asked, how far it got.
    It belongs to its job's team (`job__team`): the job is the one place that says which team."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="publications")
    execution = models.ForeignKey(JobExecution, on_delete=models.CASCADE, related_name="publications")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    forced = models.BooleanField(default=False, help_text="Published again although the render already was.")
    status = models.CharField(
        max_length=16, choices=PublicationStatus.choices, default=PublicationStatus.QUEUED
    )
    title = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    category_id = models.CharField(max_length=8)
    language = models.CharField(max_length=35, blank=True)
    privacy = models.CharField(max_length=16, choices=Privacy.choices)
    publish_at = models.DateTimeField(null=True, blank=True, help_text="YouTube makes the video public then.")
    video_id = models.CharField(max_length=32, blank=True)
    url = models.URLField(blank=True)
    # The resumable upload session (a URL that accepts the video's bytes): a retry resumes it.
    upload_uri = models.TextField(blank=True)
    uploaded_bytes = models.PositiveBigIntegerField(default=0)
    thumbnail_done = models.BooleanField(default=False)
    captions_done = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    scheduled_for = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A WAITING publication runs then (the next quota day, or after a back-off).",
    )
    detail = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "scheduled_for"], name="publication_status_scheduled")]
        constraints = [
            # A render is published once, unless an operator forces another copy.
            models.UniqueConstraint(
                fields=["execution"], condition=Q(forced=False), name="publication_once_per_execution"
            ),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.job_id} #{self.pk} {self.status}"


class QuotaUsage(models.Model):
    """YouTube Data API units one Google project spent (or reserved) on one quota day (Pacific time):
    the project's whole (no team), and each team's part of it."""

    project = models.CharField(max_length=255)
    day = models.DateField()
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Empty: the project's units, every team's together.",
    )
    units = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "day"], condition=Q(team__isnull=True), name="quota_usage_unique_day"
            ),
            models.UniqueConstraint(
                fields=["project", "day", "team"],
                condition=Q(team__isnull=False),
                name="quota_usage_unique_team_day",
            ),
        ]
        ordering = ["-day", "project", "team"]

    def __str__(self) -> str:
        whose = f" ({self.team})" if self.team_id else ""
        return f"{self.project} {self.day}{whose}: {self.units}"


# ---------------------------------------------------------------- webhooks (logic in jobs.webhooks)


class EventKind(models.TextChoices):
    RENDER_DONE = "render.done", "Render done"
    RENDER_FAILED = "render.failed", "Render failed"
    PUBLISH_DONE = "publish.done", "Publish done"
    PUBLISH_FAILED = "publish.failed", "Publish failed"


class Webhook(Owned):
    """A team's URL that gets a signed POST for each event of the team's jobs it subscribes to."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    url = models.URLField(max_length=2000, help_text="Where events are POSTed; public addresses only.")
    description = models.CharField(max_length=255, blank=True)
    events = models.JSONField(default=list, blank=True, help_text="Event kinds to send; empty: all of them.")
    is_active = models.BooleanField(default=True)
    # Kept readable: every delivery is signed with it (HMAC). Shown to its creator once, on creation.
    secret = models.CharField(max_length=100, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.url

    def wants(self, kind: str) -> bool:
        return self.is_active and (not self.events or kind in self.events)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"  # due at next_attempt_at (first try, or a retry)
    SENDING = "sending"  # held by one sender until next_attempt_at (its lease); due again past it
    DELIVERED = "delivered"
    FAILED = "failed"  # out of attempts, or refused; can be sent again from the admin or API


class WebhookDelivery(models.Model):
    """One event for one webhook: stored in the transaction that caused the event, sent after it."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField(help_text="The event's id, the same on every retry: receivers dedupe on it.")
    kind = models.CharField(max_length=32, choices=EventKind.choices)
    payload = models.JSONField(help_text="The JSON body sent.")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_status_due")]
        constraints = [models.UniqueConstraint(fields=["webhook", "event_id"], name="delivery_one_per_event")]
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.kind} {self.event_id} → {self.webhook_id}"


class WebhookAttempt(models.Model):
    """One try at sending a delivery: what the receiver answered, or why nothing was sent."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} {self.status_code or self.error[:40]}"


class WebsocketTicket(models.Model):
    """A pass for one websocket, used once within a minute (jobs.render.progress.ws_ticket_*). Only its hash
    is kept. A ticket asked for with an API token goes when that token is deleted."""

    key = models.CharField(primary_key=True, max_length=64, help_text="SHA-256 of the ticket, hex.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    token = models.ForeignKey(
        "authtoken.Token", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"websocket ticket of {self.user_id} at {self.created_at:%H:%M:%S}"
