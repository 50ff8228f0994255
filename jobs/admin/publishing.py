"""The admin side of publishing (jobs.publishing.publications): the job list's action, the job page's publish form,
the publications on the job page (a read-only field) and in their own list, and the quota days. JobAdmin mixes in
PublishingAdminMixin; jobs.admin imports this module, which registers the rest."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from accounts import teams
from accounts.admin import TeamAdmin
from accounts.models import Team
from jobs.models import Job, Privacy, Publication, QuotaUsage
from jobs.publishing import publications, quota


class PublishForm(forms.Form):
    """What an operator may choose; jobs.publishing.publications.publish_options_check judges it (as for the API)."""

    privacy = forms.ChoiceField(choices=[("", "Default"), *Privacy.choices], required=False)
    publish_at = forms.DateTimeField(
        required=False,
        help_text="Scheduled: YouTube makes the video public then "
        "(it stays private until). YYYY-MM-DD HH:MM, in the site's time zone.",
    )
    tags = forms.CharField(required=False, help_text="Comma-separated.")
    category_id = forms.CharField(required=False, max_length=8, help_text="Empty: the default category.")
    force = forms.BooleanField(
        required=False, help_text="Upload another copy of a render that was published."
    )

    def options(self) -> publications.PublishOptions:
        data = self.cleaned_data
        return publications.PublishOptions(
            privacy=data["privacy"],
            publish_at=data["publish_at"],
            category_id=data["category_id"].strip(),
            tags=[tag.strip() for tag in data["tags"].split(",") if tag.strip()],
            force=data["force"],
        )


def video_link(publication: Publication) -> str:
    if not publication.url:
        return "-"
    return format_html(
        '<a href="{}" rel="noopener" target="_blank">{}</a>', publication.url, publication.video_id
    )


class PublishingAdminMixin:
    """The job list's "Publish to YouTube" action, the job page's publish view and its list of publications
    (a read-only field, not an inline: the job form posts no formset for it)."""

    @admin.display(description="Publications")
    def publications_list(self, obj: Job | None) -> str:
        rows = list(obj.publications.select_related("account")[:10]) if obj is not None and obj.pk else []
        if not rows:
            return "-"
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>#{} {} to {}: {} {}</li>",
                ((row.pk, row.status, row.account.username, video_link(row), row.detail) for row in rows),
            ),
        )

    @admin.action(description="Publish to YouTube (latest successful render)", permissions=["change"])
    def publish(self, request, queryset) -> None:
        queued, refused = publications.publications_request(jobs=queryset, user=request.user)
        for reason in refused:
            self.message_user(request, reason, messages.ERROR)
        if queued:
            self.message_user(request, f"Queued {len(queued)} publication(s) to YouTube.", messages.SUCCESS)

    def get_urls(self):
        return [
            path(
                "<int:object_id>/publish/",
                self.admin_site.admin_view(self.publish_view),
                name="jobs_job_publish",
            ),
            *super().get_urls(),
        ]

    def publish_view(self, request, object_id: int):
        job: Job = self._job_to_change(request, object_id)
        change_url = reverse("admin:jobs_job_change", args=[job.pk])
        form = PublishForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                publication = publications.publication_request(
                    job=job, user=request.user, options=form.options()
                )
            except ValidationError as error:
                for message in error.messages:
                    form.add_error(None, message)
            except PermissionDenied as error:  # not a publisher of the job's team (accounts.teams)
                form.add_error(None, str(error))
            else:
                self.message_user(
                    request,
                    f"Queued publication {publication.pk} of render "
                    f"{publication.execution_id} to {publication.account.username}.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": job,
            "job": job,
            "title": f"Publish to YouTube: {job.title}",
            "form": form,
            "change_url": change_url,
            "publications": job.publications.select_related("account")[:20],
        }
        return TemplateResponse(request, "admin/jobs/job/publish.html", context)


@admin.register(Publication)
class PublicationAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "job",
        "account",
        "status",
        "video",
        "privacy",
        "attempts",
        "scheduled_for",
        "job__team",
        "created_at",
    ]
    list_filter = ["status", "privacy"]
    search_fields = ["job__title", "video_id", "detail"]
    list_select_related = ["job__team", "account"]
    fields = [
        "job",
        "execution",
        "account",
        "status",
        "video",
        "title",
        "description",
        "tags",
        "category_id",
        "language",
        "privacy",
        "publish_at",
        "forced",
        "uploaded_bytes",
        "thumbnail_done",
        "captions_done",
        "attempts",
        "scheduled_for",
        "detail",
        "error",
        "requested_by",
        "created_at",
        "published_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).filter(job__in=teams.visible(Job.objects.all(), request))

    def has_add_permission(self, request) -> bool:
        return False  # publish from the job page or the job list

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Video")
    def video(self, obj: Publication) -> str:
        return video_link(obj)


@admin.register(QuotaUsage)
class QuotaUsageAdmin(admin.ModelAdmin):
    """YouTube units spent per Google project and quota day (Pacific time): the project's whole, and
    each team's part (a member sees the project's and their own teams' rows)."""

    list_display = ["day", "project", "team", "units", "budget"]
    readonly_fields = ["project", "day", "team", "units"]

    def get_queryset(self, request):
        rows = super().get_queryset(request).select_related("team")
        if request.user.is_superuser:
            return rows
        return rows.filter(Q(team__isnull=True) | Q(team__in=teams.teams_of(request.user)))

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Daily budget")
    def budget(self, obj: QuotaUsage) -> int:
        return settings.YOUTUBE_DAILY_QUOTA if obj.team_id is None else quota.team_quota_budget()


def team_quota_line(team: Team) -> str:
    """A team's YouTube units today, in words (its page)."""
    today = quota.team_quota(team=team)
    return (
        f"{today.used} of its {today.budget} units used on the quota day {today.day} (Pacific time); "
        f"{today.left} left (the project has {quota.quota_left(day=today.day)} of "
        f"{settings.YOUTUBE_DAILY_QUOTA} left)"
    )


class TeamWithQuotaAdmin(TeamAdmin):
    """The team's page (accounts.admin.TeamAdmin) with its YouTube quota today: the quota is jobs',
    and accounts imports nothing of jobs."""

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        return [*fields, "youtube_quota"] if obj is not None else fields

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "youtube_quota"]

    @admin.display(description="YouTube quota today")
    def youtube_quota(self, team: Team) -> str:
        return team_quota_line(team) if team.pk else "-"


admin.site.unregister(Team)
admin.site.register(Team, TeamWithQuotaAdmin)
