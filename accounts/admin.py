from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.html import format_html

from .forms import BRAND_FIELDS, AccountForm
from .models import Account, User


def is_owned(model) -> bool:
    return hasattr(model._default_manager, "visible_to")


class VisibleRelatedFilter(admin.RelatedFieldListFilter):
    """Filter by a related row, listing only the rows the operator may see (own and shared)."""

    def field_choices(self, field, request, model_admin):
        visible = field.related_model._default_manager.visible_to(request.user).values("pk")
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(include_blank=False, limit_choices_to={"pk__in": visible}, ordering=ordering)


class OwnedAdmin(admin.ModelAdmin):
    """Operators see and pick their own rows and the shared presets; superusers see everything.

    Shared rows (no owner) are changed and deleted by superusers only. A list filter on a related
    owned row ("account", "job__topic") lists only the rows the operator may see.
    """

    shared_rows_superuser_only = True

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """Without Django's surrounding transaction: these pages store uploaded files (logos, reference
        audio, clips, narrations; on S3 a network call), and no transaction may wait on the network.
        The rows are written by single statements or by the services' own short transactions."""
        return self._changeform_view(request, object_id, form_url, extra_context)

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user)

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
            kwargs.setdefault("queryset", related._default_manager.visible_to(request.user))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        self.default_owner(request, obj, change)
        super().save_model(request, obj, form, change)

    def default_owner(self, request, obj, change) -> None:
        if not change and obj.owner_id is None and not request.user.is_superuser:
            obj.owner = request.user  # only superusers create shared presets

    def get_exclude(self, request, obj=None):
        excluded = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser:
            excluded.append("owner")
        return excluded

    def _is_locked(self, request, obj) -> bool:
        return (self.shared_rows_superuser_only and obj is not None and obj.owner_id is None
                and not request.user.is_superuser)

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
    list_display = ["username", "logo_preview", "platform", "area", "owner", "updated_at"]
    list_filter = ["platform", "area"]
    search_fields = ["username", "area"]
    list_select_related = ["owner"]
    readonly_fields = ["logo_preview"]
    form = AccountForm

    def get_fieldsets(self, request, obj=None):
        channel = ["username", "platform", "area", "logo", "logo_preview"]
        if request.user.is_superuser:
            channel.append("owner")
        return [(None, {"fields": channel}),
                ("Brand profile", {"fields": ["subtitle_background_custom", *BRAND_FIELDS]})]

    @admin.display(description="Logo")
    def logo_preview(self, obj: Account) -> str:
        if not obj.logo:
            return "-"
        return format_html('<img src="{}" alt="logo" style="height:32px">', obj.logo.url)
