import secrets

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.http import Http404, HttpResponseBadRequest, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from . import channels, teams
from .forms import BRAND_FIELDS, AccountForm
from .json_text import DepthCheckedDecoder
from .models import Account, ChannelCredentials, Membership, Role, Team, User

# Where the admin keeps a started consent (state, PKCE verifier, account) until Google sends the operator back.
CONSENT_SESSION_KEY = "youtube_consent"


def is_owned(model) -> bool:
    return hasattr(model._default_manager, "visible_to")


class VisibleRelatedFilter(admin.RelatedFieldListFilter):
    """Filter by a related row, listing only the rows the operator may see (own and shared)."""

    def field_choices(self, field, request, model_admin):
        visible = teams.visible(field.related_model._default_manager.all(), request).values("pk")
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(include_blank=False, limit_choices_to={"pk__in": visible}, ordering=ordering)


class _ShortLink(str):
    """A stored file's name whose `url` expires like the admin's other links."""

    def __new__(cls, field_file):
        link = super().__new__(cls, field_file.name)
        link.url = field_file.storage.url(field_file.name, expire=settings.ADMIN_SIGNED_URL_EXPIRE_SECONDS)
        return link


class ShortLinkFileInput(forms.ClearableFileInput):
    """A file input whose "Currently: <link>" expires after ADMIN_SIGNED_URL_EXPIRE_SECONDS."""

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        if self.is_initial(value):
            context["widget"]["value"] = _ShortLink(value)
        return context


class OwnedAdmin(admin.ModelAdmin):
    """Operators see and pick their current team's rows and the shared presets (accounts.teams);
    superusers see everything.

    Changing a row needs a role in its team; shared rows (no team) are changed and deleted by
    superusers only. A new row belongs to the current team and its creator. A list filter on a
    related owned row ("account", "job__topic") lists only the rows the operator may see.
    """

    # Actions that only read the selected rows; the others act only on rows the operator may change.
    read_only_actions: tuple[str, ...] = ()
    # JSON typed into a form is read as the API reads it: deep nesting is a form error, not a 500.
    # A stored file's link on its change page expires as the admin's other links do.
    formfield_overrides = {
        models.JSONField: {"decoder": DepthCheckedDecoder},
        models.FileField: {"widget": ShortLinkFileInput},
        models.ImageField: {"widget": ShortLinkFileInput},
    }

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """Without Django's surrounding transaction: these pages store uploaded files (logos, reference
        audio, clips, narrations; on S3 a network call), and no transaction may wait on the network.
        The rows are written by single statements or by the services' own short transactions."""
        return self._changeform_view(request, object_id, form_url, extra_context)

    def get_queryset(self, request):
        return teams.visible(super().get_queryset(request), request)

    def get_list_filter(self, request):
        return [self._visible_filter(entry) for entry in super().get_list_filter(request)]

    def _visible_filter(self, entry):
        if isinstance(entry, str):
            field = get_fields_from_path(self.model, entry)[-1]
            if field.is_relation and is_owned(field.related_model):
                return (entry, VisibleRelatedFilter)
        return entry

    def get_search_results(self, request, queryset, search_term):
        # The preset pickers' autocomplete searches what the operator typed as it is (the change list's
        # search form refuses NUL; this does not), and NUL in a query is a server error on PostgreSQL.
        return super().get_search_results(request, queryset, search_term.replace("\x00", ""))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        if is_owned(related):
            kwargs.setdefault("queryset", teams.visible(related._default_manager.all(), request))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        self.default_owner(request, obj, change)
        super().save_model(request, obj, form, change)

    def default_owner(self, request, obj, change) -> None:
        """A new row is its creator's, in the current team; a superuser picks its team (none: a preset)."""
        if change:
            return
        if obj.owner_id is None:
            obj.owner = request.user
        if not request.user.is_superuser:
            obj.team = teams.creating_team(request)

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        team = teams.current_team(request)
        if team is not None:
            initial.setdefault("team", team.pk)
        return initial

    def get_exclude(self, request, obj=None):
        excluded = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser:
            excluded += ["owner", "team"]
        return excluded

    def _is_locked(self, request, obj) -> bool:
        return obj is not None and not teams.may_edit(request.user, obj)

    def response_action(self, request, queryset):
        """An action changes only the selected rows the operator may change: the current team's, with
        the role (a selected preset is left out); superusers' actions change any."""
        action = request.POST.get("action", "")
        if not request.user.is_superuser and action not in self.read_only_actions:
            team = teams.current_team(request)
            if teams.has_role(request.user, team, teams.edit_role(self.model)):
                queryset = queryset.filter(team=team)
            else:
                queryset = queryset.none()
        return super().response_action(request, queryset)

    def has_add_permission(self, request) -> bool:
        if not request.user.is_superuser and not teams.has_role(
            request.user, teams.current_team(request), teams.edit_role(self.model)
        ):
            return False
        return super().has_add_permission(request)

    def has_change_permission(self, request, obj=None) -> bool:
        if self._is_locked(request, obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if self._is_locked(request, obj):
            return False
        return super().has_delete_permission(request, obj)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "email", "is_staff", "is_superuser", "last_login", "date_joined"]


@admin.register(Account)
class AccountAdmin(OwnedAdmin):
    list_display = ["username", "logo_preview", "platform", "area", "team", "owner", "youtube", "updated_at"]
    list_filter = ["platform", "area"]
    search_fields = ["username", "area"]
    list_select_related = ["team", "owner", "channel_credentials"]
    readonly_fields = ["logo_preview", "youtube"]
    form = AccountForm

    def get_fieldsets(self, request, obj=None):
        channel = ["username", "platform", "area", "logo", "logo_preview"]
        if request.user.is_superuser:
            channel += ["team", "owner"]
        if obj is not None:
            channel.append("youtube")
        return [
            (None, {"fields": channel}),
            ("Brand profile", {"fields": ["subtitle_background_custom", *BRAND_FIELDS]}),
        ]

    @admin.display(description="Logo")
    def logo_preview(self, obj: Account) -> str:
        if not obj.logo:
            return "-"
        return format_html(
            '<img src="{}" alt="logo" style="height:32px">',
            obj.logo.storage.url(obj.logo.name, expire=settings.ADMIN_SIGNED_URL_EXPIRE_SECONDS),
        )

    @admin.display(description="YouTube channel")
    def youtube(self, obj: Account) -> str:
        """Whether the channel is connected, never the grant itself; the link to (re)connect it."""
        if obj.platform != channels.PLATFORM:
            return "-"
        connection = getattr(obj, "channel_credentials", None) if obj.pk else None
        connect = reverse("admin:accounts_account_youtube_connect", args=[obj.pk]) if obj.pk else ""
        if connection is None:
            return format_html('Not connected · <a href="{}">Connect YouTube channel</a>', connect)
        if connection.problem:
            return format_html(
                '<strong>Needs reconnecting:</strong> {} · <a href="{}">Connect YouTube channel</a>',
                connection.problem,
                connect,
            )
        return format_html(
            'Connected {} · <a href="{}">Connect again</a>',
            connection.connected_at.strftime("%Y-%m-%d %H:%M"),
            connect,
        )

    # ------------------------------------------------------------ connecting the channel

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:object_id>/youtube/connect/",
                view(self.youtube_connect_view),
                name="accounts_account_youtube_connect",
            ),
            path(
                "youtube/callback/",
                view(self.youtube_callback_view),
                name="accounts_account_youtube_callback",
            ),
            *super().get_urls(),
        ]

    def _account_to_connect(self, request, object_id) -> Account:
        """The account, if the user sees it (else 404) and may manage its channel (else 403)."""
        account = self.get_object(request, str(object_id))
        if account is None:
            raise Http404("No such account.")
        if not (
            self.has_change_permission(request, account)
            and channels.channel_can_manage(account, request.user)
        ):
            raise PermissionDenied
        return account

    def _callback_url(self, request) -> str:
        return settings.YOUTUBE_REDIRECT_URL or request.build_absolute_uri(
            reverse("admin:accounts_account_youtube_callback")
        )

    def youtube_connect_view(self, request, object_id: int):
        """Send the operator to Google's consent page for this account's channel. A superuser may connect
        it for a team (`?for_team=<slug>`): once Google grants access, the channel is that team's."""
        account = self._account_to_connect(request, object_id)
        for_team = request.GET.get("for_team", "").strip()
        if for_team:
            if not request.user.is_superuser:
                raise PermissionDenied("Only a superuser connects a channel for a team.")
            for_team = teams.team_named(request.user, for_team).slug
        change_url = reverse("admin:accounts_account_change", args=[account.pk])
        try:
            start = channels.consent_start(account=account, redirect_uri=self._callback_url(request))
        except ValidationError as error:
            self.message_user(request, "; ".join(error.messages), messages.ERROR)
            return HttpResponseRedirect(change_url)
        request.session[CONSENT_SESSION_KEY] = {
            "state": start.state,
            "verifier": start.code_verifier,
            "account": account.pk,
            "for_team": for_team,
        }
        return HttpResponseRedirect(start.url)

    def youtube_callback_view(self, request):
        """Google sends the operator back here: the answer must match the consent this session started,
        for an account this operator may still manage."""
        started = request.session.pop(CONSENT_SESSION_KEY, None)
        state = request.GET.get("state", "")
        if not started or not secrets.compare_digest(state.encode(), str(started["state"]).encode()):
            return HttpResponseBadRequest(
                "This answer from Google does not match a connection started in this "
                "session; start again from the account page."
            )
        account = self._account_to_connect(request, started["account"])
        change_url = reverse("admin:accounts_account_change", args=[account.pk])
        if request.GET.get("error"):
            self.message_user(
                request,
                f"Google did not grant access ({request.GET['error']}); the channel is unchanged.",
                messages.WARNING,
            )
            return HttpResponseRedirect(change_url)
        try:
            channels.consent_finish(
                account=account,
                user=request.user,
                redirect_uri=self._callback_url(request),
                state=state,
                code_verifier=started["verifier"],
                code=request.GET.get("code", ""),
            )
        except ValidationError as error:
            self.message_user(request, "; ".join(error.messages), messages.ERROR)
        else:
            if started.get("for_team") and request.user.is_superuser:
                account.team = Team.objects.get(slug=started["for_team"])
                account.save(update_fields=["team", "updated_at"])
            self.message_user(
                request, f"Connected the YouTube channel of {account.username}.", messages.SUCCESS
            )
        return HttpResponseRedirect(change_url)


@admin.register(ChannelCredentials)
class ChannelCredentialsAdmin(admin.ModelAdmin):
    """Connected channels: when and by whom, and whether Google still accepts the grant. The grant itself is
    never shown; deleting a row disconnects the channel."""

    list_display = ["account", "account__team", "connected_at", "connected_by", "problem"]
    list_select_related = ["account__team", "connected_by"]
    fields = ["account", "connected_at", "connected_by", "scopes", "problem"]
    readonly_fields = fields
    search_fields = ["account__username"]

    def get_queryset(self, request):
        rows = super().get_queryset(request)
        if request.user.is_superuser:
            return rows
        # The current team's channels; a shared channel's grant: superusers only.
        return rows.filter(account__team=teams.current_team(request), account__team__isnull=False)

    def has_add_permission(self, request) -> bool:
        return False  # connect from the account page

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class MembershipForm(forms.ModelForm):
    """A member, added by username."""

    username = forms.CharField(max_length=150)

    class Meta:
        model = Membership
        fields = ["role"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["username"].initial = self.instance.user.username
            self.fields["username"].disabled = True

    def clean_username(self) -> str:
        username = self.cleaned_data["username"].strip()
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise ValidationError(f"No user “{username}”.")
        self.instance.user = user
        return username


class MembershipFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        kept = [form for form in self.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")]
        names = [form.cleaned_data.get("username") for form in kept]
        if len(names) != len(set(names)):
            raise ValidationError("Each member once: a username is listed twice.")
        if not any(form.cleaned_data.get("role") == Role.ADMIN for form in kept):
            raise ValidationError("A team keeps at least one admin.")


class MembershipInline(admin.TabularInline):
    model = Membership
    form = MembershipForm
    formset = MembershipFormSet
    fields = ["username", "role", "created_at"]
    readonly_fields = ["created_at"]
    extra = 1

    def _manages(self, request, obj) -> bool:
        return obj is not None and teams.has_role(request.user, obj, Role.ADMIN)

    def has_view_permission(self, request, obj=None) -> bool:
        return obj is None or teams.may_read(request.user, _TeamRow(obj))

    def has_add_permission(self, request, obj=None) -> bool:
        return self._manages(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._manages(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._manages(request, obj)


class _TeamRow:
    """A team seen as a row of itself, for the row rules of accounts.teams."""

    def __init__(self, team: Team) -> None:
        self.team, self.team_id = team, team.pk


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    """Teams: every member sees their teams and members; a team's admins manage its members (by
    username, with a role); superusers create teams and set their workers' weight."""

    list_display = ["name", "slug", "your_role", "member_count", "weight", "created_at"]
    search_fields = ["name", "slug"]
    inlines = [MembershipInline]
    readonly_fields = ["created_at"]

    def get_fields(self, request, obj=None):
        if request.user.is_superuser:
            return ["name", "slug", "weight", "personal_of", "created_at"]
        return ["name", "slug", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return ["created_at"]
        return ["slug", "created_at"]

    def get_queryset(self, request):
        mine = Membership.objects.filter(team=models.OuterRef("pk"), user=request.user).values("role")[:1]
        rows = (
            super()
            .get_queryset(request)
            .annotate(member_total=models.Count("memberships", distinct=True), role=models.Subquery(mine))
        )
        return rows if request.user.is_superuser else rows.filter(role__isnull=False)

    @admin.display(description="Your role")
    def your_role(self, team: Team) -> str:
        return team.role or "-"

    @admin.display(description="Members", ordering="member_total")
    def member_count(self, team: Team) -> int:
        return team.member_total

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None) -> bool:
        if obj is None:
            return request.user.is_active and request.user.is_staff
        return teams.may_read(request.user, _TeamRow(obj))

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is None:
            return request.user.is_superuser or teams.teams_of(request.user).exists()
        return teams.has_role(request.user, obj, Role.ADMIN)

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser
