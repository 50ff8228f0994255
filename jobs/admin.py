from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery
from django.utils.html import format_html

from accounts.admin import OwnedAdmin

from . import services
from .models import CleanupRun, Job, JobExecution, JobSplit, StockClip


class JobSplitInline(admin.TabularInline):
    model = JobSplit
    extra = 0
    fields = ["index", "start_ms", "end_ms", "text", "prompt", "selected", "clip"]
    readonly_fields = ["index", "start_ms", "end_ms"]
    raw_id_fields = ["clip"]


class JobExecutionInline(admin.TabularInline):
    model = JobExecution
    extra = 0
    can_delete = False
    fields = ["status", "progress", "detail", "worker_host", "created_at", "finished_at", "error"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(OwnedAdmin):
    list_display = ["title", "status_badge", "progress", "account", "language", "topic",
                    "orientation", "runorder", "created_at", "updated_at"]
    list_filter = ["language", "topic", "account", "orientation", "created_at", "deleted_at"]
    search_fields = ["title", "content"]
    list_select_related = ["account", "language", "topic"]
    autocomplete_fields = ["language", "voice", "topic", "account"]
    inlines = [JobSplitInline, JobExecutionInline]
    actions = ["render"]

    def get_queryset(self, request):
        latest = JobExecution.objects.filter(job=OuterRef("pk")).order_by("-created_at", "-id")
        return super().get_queryset(request).annotate(
            latest_status=Subquery(latest.values("status")[:1]),
            latest_progress=Subquery(latest.values("progress")[:1]),
        )

    @admin.display(description="Status", ordering="latest_status")
    def status_badge(self, obj: Job) -> str:
        status = getattr(obj, "latest_status", None) or "NEW"
        return format_html('<span class="status status-{}">{}</span>', status.lower(), status)

    @admin.display(description="Progress", ordering="latest_progress")
    def progress(self, obj: Job) -> str:
        value = getattr(obj, "latest_progress", None)
        return "-" if value is None else f"{value}%"

    @admin.action(description="Render the selected jobs", permissions=["change"])
    def render(self, request, queryset) -> None:
        count = 0
        for job in queryset.filter(deleted_at__isnull=True):
            services.job_enqueue(job=job)
            count += 1
        self.message_user(request, f"Queued {count} job(s) for rendering.", messages.SUCCESS)


@admin.register(JobExecution)
class JobExecutionAdmin(admin.ModelAdmin):
    list_display = ["id", "job", "status", "progress", "current_step", "worker_host", "retry_count",
                    "created_at", "started_at", "finished_at"]
    list_filter = ["status", "worker_host", "created_at"]
    search_fields = ["job__title", "detail", "error"]
    list_select_related = ["job"]
    readonly_fields = ["job", "status", "progress", "current_step", "detail", "steps", "results",
                       "worker_host", "heartbeat_at", "retry_count", "error", "created_at",
                       "started_at", "finished_at"]

    def get_queryset(self, request):
        jobs = Job.objects.visible_to(request.user)
        return super().get_queryset(request).filter(job__in=jobs)

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(JobSplit)
class JobSplitAdmin(admin.ModelAdmin):
    list_display = ["job", "index", "start_ms", "end_ms", "text", "selected", "clip"]
    list_filter = ["job__topic"]
    search_fields = ["text", "prompt", "job__title"]
    list_select_related = ["job", "clip"]
    raw_id_fields = ["job", "clip"]

    def get_queryset(self, request):
        jobs = Job.objects.visible_to(request.user)
        return super().get_queryset(request).filter(job__in=jobs)


@admin.register(StockClip)
class StockClipAdmin(OwnedAdmin):
    list_display = ["__str__", "tags", "duration_ms", "width", "height", "source", "licence", "owner"]
    list_filter = ["source", "licence"]
    search_fields = ["title", "tags", "source"]
    list_select_related = ["owner"]
    readonly_fields = ["duration_ms", "width", "height"]


@admin.register(CleanupRun)
class CleanupRunAdmin(admin.ModelAdmin):
    list_display = ["created_at", "mode", "dry_run", "skipped", "files_removed", "bytes_freed"]
    list_filter = ["mode", "dry_run", "skipped"]
    search_fields = ["detail"]
    readonly_fields = ["mode", "dry_run", "skipped", "files_removed", "bytes_freed", "detail", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
