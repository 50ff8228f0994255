"""The jobs admin, the operators' workspace: a ModelAdmin per model, and the job's own views (storyboard
with its split/merge/upload/listen tools, re-split, re-render, timeline download, import) added through
JobAdmin.get_urls.
Those views share JobAdmin's queryset and permission checks (`_job_to_change`), so they stay in this
one module; the work itself is in jobs.storyboard and jobs.services.
"""

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db.models import F, IntegerField, OuterRef, Subquery
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, Greatest
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts import teams
from accounts.admin import OwnedAdmin
from accounts.json_text import json_parse
from accounts.uploads import check_image, checked_clip
from jobs import services, storyboard
from jobs.admin.forms import ImportConfirmForm, ImportUploadForm, JobAdminForm, StockClipForm
from jobs.admin.publishing import PublishingAdminMixin
from jobs.exports import archive, importing
from jobs.exports import timeline as timelines
from jobs.files import execution_urls
from jobs.footage import stock
from jobs.models import CleanupRun, ExecutionStatus, Job, JobExecution, JobSplit, StockClip
from jobs.records import step_records
from jobs.render import previews, progress
from jobs.render.steps import STEPS

DUPLICATED_FIELDS = [
    "content",
    "description",
    "publish_title",
    "language",
    "voice",
    "topic",
    "account",
    "speech_speed",
    "orientation",
    "extra",
    "runorder",
]


def clock(milliseconds: int) -> str:
    minutes, seconds = divmod(milliseconds / 1000, 60)
    return f"{int(minutes)}:{seconds:04.1f}"


class LatestStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("NEW", "Never rendered"), *ExecutionStatus.choices]

    def queryset(self, request, queryset):
        if self.value() == "NEW":
            return queryset.filter(latest_status__isnull=True)
        if self.value():
            return queryset.filter(latest_status=self.value())
        return queryset


class DeletedFilter(admin.SimpleListFilter):
    """Deleted jobs stay out of the list unless asked for."""

    title = "deleted"
    parameter_name = "deleted"

    def lookups(self, request, model_admin):
        return [("no", "No"), ("yes", "Yes"), ("all", "All")]

    def choices(self, changelist):
        for value, label in self.lookup_choices:
            selected = self.value() == value or (self.value() is None and value == "no")
            query_string = changelist.get_query_string({self.parameter_name: value})
            yield {"selected": selected, "query_string": query_string, "display": label}

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(deleted_at__isnull=False)
        if self.value() == "all":
            return queryset
        return queryset.filter(deleted_at__isnull=True)


class JobExecutionInline(admin.TabularInline):
    model = JobExecution
    extra = 0
    can_delete = False
    fields = ["status", "progress", "step_durations", "worker_host", "created_at", "finished_at", "error"]
    readonly_fields = fields
    show_change_link = True
    max_num = 0

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Steps")
    def step_durations(self, obj: JobExecution) -> str:
        parts = []
        # In pipeline order (the database keeps JSON keys in an order of its own: shortest first).
        records = step_records(obj.steps)
        for name in sorted(
            records, key=lambda name: list(STEPS).index(name) if name in STEPS else len(STEPS)
        ):
            record = records[name]
            seconds = record.raw.get("duration_s")
            timing = f" {seconds:.1f}s" if isinstance(seconds, (int, float)) else ""
            chunks = record.chunks
            reuse = f" (chunks: {chunks['reused']} of {chunks['total']} reused)" if chunks else ""
            parts.append(f"{name} {record.status or '?'}{timing}{reuse}")
        return ", ".join(parts) or "-"


@admin.register(Job)
class JobAdmin(PublishingAdminMixin, OwnedAdmin):
    read_only_actions = ("export_zip", "export_csv")
    change_form_template = "admin/jobs/job/change_form.html"
    form = JobAdminForm
    list_display = [
        "title",
        "status_badge",
        "progress",
        "account_name",
        "language_code",
        "topic",
        "video_length",
        "team",
        "created",
        "updated",
    ]
    list_filter = [LatestStatusFilter, "account", "language", "topic", "created_at", DeletedFilter]
    search_fields = ["title", "content"]
    list_select_related = ["account", "language", "topic", "team"]
    autocomplete_fields = ["language", "voice", "topic", "account"]
    readonly_fields = ["deleted_at", "created_at", "updated_at", "publications_list"]
    fieldsets = [
        (None, {"fields": ["title", "content", "runorder"]}),
        (
            "Voice and look",
            {
                "fields": [
                    "language",
                    "voice",
                    "speech_speed",
                    "topic",
                    "account",
                    "orientation",
                    "narration_audio",
                ]
            },
        ),
        ("Publishing", {"fields": ["publish_title", "description", "publications_list"]}),
        (
            "Advanced",
            {
                "classes": ["collapse"],
                "fields": ["extra", "team", "owner", "deleted_at", "created_at", "updated_at"],
            },
        ),
    ]
    inlines = [JobExecutionInline]
    actions = [
        "render",
        "cancel",
        "increase_priority",
        "duplicate",
        "soft_delete",
        "restore",
        "export_zip",
        "export_csv",
        "publish",
    ]

    class Media:
        css = {"all": ["jobs/admin.css", "jobs/progress.css"]}

    def get_fieldsets(self, request, obj=None):
        if request.user.is_superuser:
            return self.fieldsets
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f not in ("owner", "team")]})
            for name, options in self.fieldsets
        ]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.user = request.user  # a class made for this request by modelform_factory
        form.team = obj.team if obj is not None else teams.current_team(request)
        return form

    def save_model(self, request, obj: Job, form: JobAdminForm, change: bool) -> None:
        """Through the services, with the input JobAdminForm.clean checked with the same rules."""
        # Only superusers have the owner and team fields; others' new jobs are theirs, in the current team.
        chosen = {name: form.cleaned_data[name] for name in ("owner", "team") if name in form.cleaned_data}
        if change:
            changed = {name: value for name, value in chosen.items() if name in form.changed_data}
            services.job_update(job=obj, user=request.user, **form.job_input, **changed)
            return
        team = chosen["team"] if "team" in chosen else teams.creating_team(request)
        job = services.job_create(user=request.user, team=team, **form.job_input)
        if "owner" in chosen and chosen["owner"] != job.owner:
            job = services.job_update(job=job, user=request.user, owner=chosen["owner"])
        obj.pk = job.pk  # the admin goes on with `obj` (history, redirect): make it the saved row
        obj.refresh_from_db()

    def get_queryset(self, request):
        success = JobExecution.objects.filter(job=OuterRef("pk")).successes()
        return (
            super()
            .get_queryset(request)
            .annotate(
                latest_status=F("latest_execution__status"),
                latest_progress=F("latest_execution__progress"),
                latest_updated=F("latest_execution__updated_at"),
                last_change=Greatest("updated_at", Coalesce("latest_execution__updated_at", "updated_at")),
                video_ms=Subquery(
                    success.annotate(
                        ms=Cast(KT("steps__narration__data__duration_ms"), IntegerField())
                    ).values("ms")[:1]
                ),
            )
        )

    @admin.display(description="Status", ordering="latest_status")
    def status_badge(self, obj: Job) -> str:
        status = getattr(obj, "latest_status", None) or "NEW"
        # data-job-status and data-job-progress: the job list's live updates (jobs/joblist.js) find them.
        if obj.deleted_at:
            return format_html(
                '<span class="status status-{}" data-job-status="{}">{}</span> '
                '<span class="status status-deleted">DELETED</span>',
                status.lower(),
                obj.pk,
                status,
            )
        return format_html(
            '<span class="status status-{}" data-job-status="{}">{}</span>', status.lower(), obj.pk, status
        )

    @admin.display(description="Progress", ordering="latest_progress")
    def progress(self, obj: Job) -> str:
        value = getattr(obj, "latest_progress", None)
        if value is None:
            return format_html('<span data-job-progress="{}">-</span>', obj.pk)
        return format_html(
            '<span data-job-progress="{}"><span class="mini-bar" title="{}%"><span style="width:{}%">'
            "</span></span> {}%</span>",
            obj.pk,
            value,
            value,
            value,
        )

    @admin.display(description="Account", ordering="account__username")
    def account_name(self, obj: Job) -> str:
        return obj.account.username if obj.account else "-"

    @admin.display(description="Language", ordering="language__code")
    def language_code(self, obj: Job) -> str:
        return obj.language.code if obj.language else "-"

    @admin.display(description="Created", ordering="created_at")
    def created(self, obj: Job) -> str:
        return format_html(
            '<span title="{}">{}</span>',
            obj.created_at.isoformat(),
            timezone.localtime(obj.created_at).strftime("%Y-%m-%d %H:%M"),
        )

    @admin.display(description="Updated", ordering="last_change")
    def updated(self, obj: Job) -> str:
        """When the job or its latest render last changed; data-job-updated: the live list follows it."""
        changed = max(filter(None, [obj.updated_at, getattr(obj, "latest_updated", None)]))
        return format_html(
            '<span data-job-updated="{}" title="{}">{}</span>',
            obj.pk,
            changed.isoformat(),
            timezone.localtime(changed).strftime("%Y-%m-%d %H:%M"),
        )

    @admin.display(description="Length", ordering="video_ms")
    def video_length(self, obj: Job) -> str:
        milliseconds = getattr(obj, "video_ms", None)
        if not milliseconds:
            return "-"
        minutes, seconds = divmod(round(milliseconds / 1000), 60)
        return f"{minutes}:{seconds:02d}"

    # ------------------------------------------------------------ actions

    @admin.action(description="Render / re-render", permissions=["change"])
    def render(self, request, queryset) -> None:
        count = 0
        for job in queryset.filter(deleted_at__isnull=True):
            services.job_enqueue(job=job)
            count += 1
        self.message_user(request, f"Queued {count} job(s) for rendering.", messages.SUCCESS)

    @admin.action(description="Cancel the running render", permissions=["change"])
    def cancel(self, request, queryset) -> None:
        executions = JobExecution.objects.filter(
            job__in=queryset, status__in=[ExecutionStatus.PENDING, ExecutionStatus.RUNNING]
        )
        count = 0
        for execution in executions:
            services.execution_cancel(execution=execution)
            count += 1
        self.message_user(request, f"Asked {count} render(s) to stop.", messages.SUCCESS)

    @admin.action(description="Increase priority (run next)", permissions=["change"])
    def increase_priority(self, request, queryset) -> None:
        jobs = list(queryset.filter(deleted_at__isnull=True).order_by("-runorder", "-id"))
        try:
            for job in jobs:  # the selected jobs keep their order among themselves
                services.job_increase_priority(job=job)
        except ValidationError as error:
            self.message_user(request, "; ".join(error.messages), messages.ERROR)
            return
        self.message_user(request, f"Moved {len(jobs)} job(s) to the front of the queue.", messages.SUCCESS)

    @admin.action(description="Duplicate", permissions=["add"])
    def duplicate(self, request, queryset) -> None:
        created = 0
        for job in queryset:
            fields = {name: getattr(job, name) for name in DUPLICATED_FIELDS}
            title = job.title[: 255 - len(" (copy)")] + " (copy)"
            try:
                services.job_create(user=request.user, team=job.team, title=title, **fields)
            except ValidationError as error:
                self.message_user(request, f"{job.title}: {'; '.join(error.messages)}", messages.ERROR)
                continue
            created += 1
        self.message_user(request, f"Created {created} copy(ies).", messages.SUCCESS)

    @admin.action(description="Delete (soft; restorable)", permissions=["change"])
    def soft_delete(self, request, queryset) -> None:
        jobs = list(queryset.filter(deleted_at__isnull=True))
        for job in jobs:
            services.job_soft_delete(job=job)
        self.message_user(
            request, f"Deleted {len(jobs)} job(s); restore them from the deleted filter.", messages.SUCCESS
        )

    @admin.action(description="Restore", permissions=["change"])
    def restore(self, request, queryset) -> None:
        jobs = list(queryset.filter(deleted_at__isnull=False))
        for job in jobs:
            services.job_restore(job=job)
        self.message_user(request, f"Restored {len(jobs)} job(s).", messages.SUCCESS)

    @admin.action(description="Export artifacts (zip)", permissions=["view"])
    def export_zip(self, request, queryset):
        bundle = archive.artifacts_zip(jobs=queryset)
        if bundle is None:
            self.message_user(request, "None of the selected jobs has a successful render.", messages.WARNING)
            return None
        return FileResponse(
            bundle, as_attachment=True, filename="batchvideo-export.zip", content_type="application/zip"
        )

    @admin.action(description="Export links (CSV)", permissions=["view"])
    def export_csv(self, request, queryset) -> HttpResponse:
        rows = archive.export_rows(jobs=queryset, link=request.build_absolute_uri)
        response = HttpResponse(archive.export_csv(rows=rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="batchvideo-export.csv"'
        return response

    # ------------------------------------------------------------ job page

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_object(request, object_id)
        extra_context = dict(extra_context or {})
        if job is not None:
            success = job.latest_success
            extra_context.update(
                {
                    "job": job,
                    "snapshot": progress.job_snapshot(job),
                    "steps": list(STEPS),
                    "latest_urls": execution_urls(success, expire=settings.ADMIN_SIGNED_URL_EXPIRE_SECONDS),
                    "latest_is_success": success is not None and success == job.latest_execution,
                    "storyboard_url": reverse("admin:jobs_job_storyboard", args=[job.pk]),
                    "timeline_links": [
                        (label, f"{reverse('admin:jobs_job_timeline', args=[job.pk])}?format={name}")
                        for name, label in timelines.FORMATS.items()
                    ]
                    if success
                    else [],
                    "can_change_job": self.has_change_permission(request, job),
                    "publish_url": reverse("admin:jobs_job_publish", args=[job.pk]),
                }
            )
        return super().change_view(request, object_id, form_url, extra_context)

    # ------------------------------------------------------------ custom views

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:object_id>/storyboard/", view(self.storyboard_view), name="jobs_job_storyboard"),
            path(
                "<int:object_id>/storyboard/choose/",
                view(self.choose_image_view),
                name="jobs_job_choose_image",
            ),
            path("<int:object_id>/storyboard/resplit/", view(self.resplit_view), name="jobs_job_resplit"),
            path("<int:object_id>/storyboard/preview/", view(self.preview_view), name="jobs_job_preview"),
            path("<int:object_id>/rerender/", view(self.rerender_view), name="jobs_job_rerender"),
            path("<int:object_id>/timeline/", view(self.timeline_view), name="jobs_job_timeline"),
            path("import/", view(self.import_view), name="jobs_job_import"),
            *super().get_urls(),
        ]

    def _job_to_change(self, request, object_id) -> Job:
        """The job, if the user sees it (else 404) and may change it (else 403)."""
        job = self.get_object(request, str(object_id))
        if job is None:
            raise Http404("No such job.")
        if not self.has_change_permission(request, job):
            raise PermissionDenied
        return job

    def storyboard_view(self, request, object_id: int):
        job = self._job_to_change(request, object_id)
        splits = list(job.splits.select_related("clip").order_by("index"))
        clips = list(StockClip.objects.visible_to(request.user, job.team).order_by("title"))
        if request.method == "POST":
            return self._storyboard_post(request, job, splits, clips)
        clips_by_id = {clip.pk: clip for clip in clips}
        narration = storyboard.storyboard_narration(job)
        narration_url = (
            default_storage.url(narration.key, expire=settings.ADMIN_SIGNED_URL_EXPIRE_SECONDS)
            if narration
            else ""
        )
        rows = []
        for number, split_row in enumerate(splits):
            rows.append(
                {
                    "split": split_row,
                    "start": clock(split_row.start_ms),
                    "end": clock(split_row.end_ms),
                    "images": [
                        {
                            "key": image["key"],
                            "url": default_storage.url(
                                image["key"], expire=settings.ADMIN_SIGNED_URL_EXPIRE_SECONDS
                            ),
                            "source": image.get("source") or "",
                            "selected": image["key"] == split_row.selected,
                        }
                        for image in split_row.images
                        if image.get("key")
                    ],
                    # Where each boundary inside the segment is: "after sentence n".
                    "boundaries": list(enumerate(storyboard.sentences_of(split_row)[:-1], start=1)),
                    # The clips that fit the segment's keywords, best first, beside its pictures.
                    "candidates": [
                        {
                            "clip": clips_by_id[candidate["id"]],
                            "score": candidate["score"],
                            "credit": stock.clip_credit(clips_by_id[candidate["id"]]),
                            "length": f"{clips_by_id[candidate['id']].duration_ms / 1000:.1f} s",
                            "thumbnail": default_storage.url(
                                clips_by_id[candidate["id"]].thumbnail.name,
                                expire=settings.ADMIN_SIGNED_URL_EXPIRE_SECONDS,
                            )
                            if clips_by_id[candidate["id"]].thumbnail
                            else "",
                        }
                        for candidate in split_row.clip_candidates
                        if candidate.get("id") in clips_by_id
                    ],
                    "candidate_ids": [candidate.get("id") for candidate in split_row.clip_candidates],
                    "last": number == len(splits) - 1,
                    # The stored narration, played from the segment's start to its end (a media fragment).
                    "audio": f"{narration_url}#t={split_row.start_ms / 1000:.3f},{split_row.end_ms / 1000:.3f}"
                    if narration_url
                    else "",
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": job,
            "job": job,
            "title": f"Storyboard: {job.title}",
            "rows": rows,
            "clips": clips,
            "choose_url": reverse("admin:jobs_job_choose_image", args=[job.pk]),
            "preview_url": reverse("admin:jobs_job_preview", args=[job.pk]),
            "change_url": reverse("admin:jobs_job_change", args=[job.pk]),
            "resplit_url": reverse("admin:jobs_job_resplit", args=[job.pk]),
        }
        return TemplateResponse(request, "admin/jobs/job/storyboard.html", context)

    def _storyboard_post(self, request, job: Job, splits: list[JobSplit], clips: list[StockClip]):
        clips_by_id = {str(clip.pk): clip for clip in clips}
        by_id = {str(split_row.pk): split_row for split_row in splits}
        regenerate = request.POST.get("regenerate")
        if regenerate in by_id:
            storyboard.split_regenerate(split_row=by_id[regenerate])
            number = by_id[regenerate].index
            self.message_user(request, f"Segment {number} gets new pictures on the next render.")
            return HttpResponseRedirect(request.path)
        errors = []
        for key, split_row in by_id.items():
            text = request.POST.get(f"text-{key}")
            prompt = request.POST.get(f"prompt-{key}")
            try:
                if (text is not None and text.strip() != split_row.text) or (
                    prompt is not None and prompt.strip() != split_row.prompt
                ):
                    split_row.job = job
                    storyboard.split_update(split_row=split_row, text=text, prompt=prompt)
                clip_id = request.POST.get(f"clip-{key}")
                if clip_id is not None and clip_id != str(split_row.clip_id or ""):
                    if clip_id and clip_id not in clips_by_id:
                        raise ValidationError("That clip does not exist or is not yours.")
                    storyboard.split_use_clip(
                        split_row=split_row, clip=clips_by_id.get(clip_id), user=request.user
                    )
                upload = request.FILES.get(f"picture-{key}")
                if upload is not None:  # the API's checks, in the API's words
                    storyboard.split_add_image(split_row=split_row, uploaded=check_image(upload))
            except ValidationError as error:
                errors.append(f"Segment {split_row.index}: {'; '.join(error.messages)}")
        if not errors:
            errors = self._storyboard_structure(request, by_id)
        for error in errors:
            self.message_user(request, error, messages.ERROR)
        if "rerender" in request.POST and not errors:
            services.job_enqueue(job=job)
            self.message_user(request, "Saved, and queued a re-render.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:jobs_job_change", args=[job.pk]))
        if not errors and not ({"divide", "merge"} & set(request.POST)):  # those say what they did
            self.message_user(request, "Storyboard saved.", messages.SUCCESS)
        return HttpResponseRedirect(request.path)

    def _storyboard_structure(self, request, by_id: dict[str, JobSplit]) -> list[str]:
        """Split a segment or merge it with the next, when one of those buttons was pressed."""
        divide, merge = request.POST.get("divide"), request.POST.get("merge")
        try:
            if divide in by_id:
                at = request.POST.get(f"at-{divide}", "")
                if not at.isdigit():
                    raise ValidationError("Choose the sentence to split after.")
                new_part = storyboard.split_divide(split_row=by_id[divide], at=int(at))
                self.message_user(
                    request,
                    f"Split segment {new_part.index - 1}: segment {new_part.index} "
                    "starts a new picture on the next render.",
                    messages.SUCCESS,
                )
            elif merge in by_id:
                merged = storyboard.split_merge_next(split_row=by_id[merge])
                self.message_user(
                    request, f"Merged segments {merged.index} and {merged.index + 1}.", messages.SUCCESS
                )
        except ValidationError as error:
            return ["; ".join(error.messages)]
        return []

    def resplit_view(self, request, object_id: int):
        """Re-split the storyboard from scratch, after a page that says what is kept."""
        job = self._job_to_change(request, object_id)
        storyboard_url = reverse("admin:jobs_job_storyboard", args=[job.pk])
        try:
            if request.method == "POST":
                plan = storyboard.storyboard_resplit(job=job)
                self.message_user(
                    request,
                    f"Re-split into {len(plan.segments)} segments; {len(plan.kept)} kept their pictures.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(storyboard_url)
            plan = storyboard.storyboard_resplit_plan(job=job)
        except ValidationError as error:
            self.message_user(request, "; ".join(error.messages), messages.ERROR)
            return HttpResponseRedirect(storyboard_url)
        current = list(job.splits.order_by("index"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": job,
            "job": job,
            "title": f"Re-split: {job.title}",
            "plan": plan,
            "storyboard_url": storyboard_url,
            "change_url": reverse("admin:jobs_job_change", args=[job.pk]),
            "target_s": storyboard.segment_target_ms(job) / 1000,
            "current_count": len(current),
            "kept": [current[position] for position in plan.kept],
            "dropped": [current[position] for position in plan.dropped],
            "segments": [
                {
                    "segment": segment,
                    "keeps": current[segment.origin].index if segment.origin is not None else None,
                }
                for segment in plan.segments
            ],
        }
        return TemplateResponse(request, "admin/jobs/job/resplit.html", context)

    def choose_image_view(self, request, object_id: int) -> JsonResponse:
        if request.method != "POST":
            return JsonResponse({"error": "POST only"}, status=405)
        job = self._job_to_change(request, object_id)
        try:
            payload = json_parse(request.body or b"{}")
            split_row = job.splits.get(pk=int(payload["split"]))
            storyboard.split_choose_image(split_row=split_row, key=str(payload["key"]))
        except (ValueError, KeyError, TypeError, JobSplit.DoesNotExist):
            return JsonResponse({"error": "Expected {split, key} of one of this job's segments."}, status=400)
        except ValidationError as error:
            return JsonResponse({"error": "; ".join(error.messages)}, status=400)
        return JsonResponse({"split": split_row.pk, "selected": split_row.selected})

    def preview_view(self, request, object_id: int) -> JsonResponse:
        """Make (or find) a segment's preview: {split, url}, or {error} in the API's words."""
        if request.method != "POST":
            return JsonResponse({"error": "POST only"}, status=405)
        job = self._job_to_change(request, object_id)
        try:
            split_row = job.splits.get(pk=int(json_parse(request.body or b"{}")["split"]))
            key = previews.split_preview(split_row=split_row)
        except (ValueError, KeyError, TypeError, JobSplit.DoesNotExist):
            return JsonResponse({"error": "Expected {split} of one of this job's segments."}, status=400)
        except ValidationError as error:
            return JsonResponse({"error": "; ".join(error.messages)}, status=400)
        return JsonResponse(
            {
                "split": split_row.pk,
                "url": default_storage.url(key, expire=settings.ADMIN_SIGNED_URL_EXPIRE_SECONDS),
            }
        )

    def rerender_view(self, request, object_id: int):
        if request.method != "POST":
            return JsonResponse({"error": "POST only"}, status=405)
        job = self._job_to_change(request, object_id)
        try:
            services.job_enqueue(job=job)
        except ValidationError as error:
            self.message_user(request, "; ".join(error.messages), messages.ERROR)
        else:
            self.message_user(request, "Queued a re-render.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:jobs_job_change", args=[job.pk]))

    def timeline_view(self, request, object_id: int):
        """The latest render as an editable timeline (?format=otio|fcpxml|fcp7xml|jianying), as a zip."""
        job = self.get_object(request, str(object_id))
        if job is None:
            raise Http404("No such job.")
        if not self.has_view_permission(request, job):
            raise PermissionDenied
        try:
            archive, filename = timelines.job_timeline_zip(job=job, fmt=request.GET.get("format"))
        except (ValidationError, timelines.TimelineUnavailable) as error:
            text = "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)
            self.message_user(request, text, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:jobs_job_change", args=[job.pk]))
        return FileResponse(archive, as_attachment=True, filename=filename, content_type="application/zip")

    def import_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        team = teams.creating_team(request)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "title": "Import jobs"}
        if request.method == "POST" and "confirm" in request.POST:
            form = ImportConfirmForm(request.POST)
            if form.is_valid():
                rows = importing.import_parse(
                    form.cleaned_data["payload"].encode(),
                    filename=form.cleaned_data["filename"],
                    user=request.user,
                    team=team,
                )
                jobs = importing.import_create(
                    rows, user=request.user, team=team, enqueue=form.cleaned_data["enqueue"]
                )
                bad = sum(1 for row in rows if row.errors)
                self.message_user(
                    request, f"Created {len(jobs)} job(s); skipped {bad} bad row(s).", messages.SUCCESS
                )
                return HttpResponseRedirect(reverse("admin:jobs_job_changelist"))
            upload = ImportUploadForm()
        elif request.method == "POST":
            upload = ImportUploadForm(request.POST, request.FILES)
            if upload.is_valid():
                data = upload.cleaned_data["file"].read()
                filename = upload.cleaned_data["file"].name
                try:
                    rows = importing.import_parse(data, filename=filename, user=request.user, team=team)
                except ValidationError as error:
                    upload.add_error("file", error)
                else:
                    context.update(
                        {
                            "rows": rows,
                            "good": [row for row in rows if not row.errors],
                            "bad": [row for row in rows if row.errors],
                            "confirm": ImportConfirmForm(
                                initial={"payload": data.decode("utf-8-sig"), "filename": filename}
                            ),
                        }
                    )
        else:
            upload = ImportUploadForm()
        context["upload"] = upload
        return TemplateResponse(request, "admin/jobs/job/import.html", context)


@admin.register(JobExecution)
class JobExecutionAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "job",
        "status",
        "progress",
        "current_step",
        "worker_host",
        "attempt",
        "retry_count",
        "job__team",
        "created_at",
        "started_at",
        "finished_at",
    ]
    list_filter = ["status", "error_kind", "worker_host", "created_at"]
    search_fields = ["job__title", "detail", "error"]
    list_select_related = ["job__team"]
    readonly_fields = [
        "job",
        "status",
        "progress",
        "current_step",
        "detail",
        "steps",
        "results",
        "worker_host",
        "heartbeat_at",
        "attempt",
        "retry_count",
        "retry_at",
        "error_kind",
        "error",
        "created_at",
        "started_at",
        "finished_at",
    ]

    def get_queryset(self, request):
        jobs = teams.visible(Job.objects.all(), request)
        return super().get_queryset(request).filter(job__in=jobs)

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(StockClip)
class StockClipAdmin(OwnedAdmin):
    form = StockClipForm
    list_display = [
        "__str__",
        "preview",
        "tags",
        "duration_ms",
        "width",
        "height",
        "source",
        "licence",
        "team",
        "owner",
    ]
    list_filter = ["source", "licence"]
    search_fields = ["title", "tags", "source"]
    list_select_related = ["team", "owner"]
    readonly_fields = ["preview", "duration_ms", "width", "height"]

    def save_model(self, request, obj: StockClip, form: StockClipForm, change: bool) -> None:
        uploaded = form.cleaned_data.get("file")
        if not isinstance(uploaded, UploadedFile):
            super().save_model(request, obj, form, change)
            return
        self.default_owner(request, obj, change)
        with checked_clip(uploaded) as checked:  # checked once already by StockClipForm.clean_file
            services.clip_set_file(clip=obj, path=checked.path)

    @admin.display(description="Preview")
    def preview(self, obj: StockClip) -> str:
        if not obj.file:
            return "-"
        return format_html(
            '<video src="{}" preload="metadata" muted controls width="160"></video>',
            obj.file.storage.url(obj.file.name, expire=settings.ADMIN_SIGNED_URL_EXPIRE_SECONDS),
        )


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
