"""What every API view shares: who may see and change a row, paging and request rates.

The rule (accounts.teams): a user sees the rows of the team the request works in (the X-Team header or
the team parameter, else the user's default team) and the shared presets (no team); superusers see
everything. Another team's row does not exist (404). Changing a row needs a role in its team; a shared
preset is read-only (403) for everyone but superusers. Rows created through the API belong to the
request's team and were created by the requesting user.
"""

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.pagination import PageNumberPagination

from accounts import teams

from .parsers import CheckedJSONParser
from .throttling import API_THROTTLES


class ApiPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class OwnedRowPermission(permissions.BasePermission):
    """Reading needs only visibility (the queryset); changing needs a role in the row's team, and a
    shared preset a superuser."""

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        teams.require_role(request.user, obj.team, teams.edit_role(type(obj)))  # 403 saying why
        return True


class ApiViewMixin:
    """Throttles and parsers for every API view, independent of settings.REST_FRAMEWORK."""

    throttle_classes = API_THROTTLES
    parser_classes = [CheckedJSONParser]


class OwnedPrimaryKeyField(serializers.PrimaryKeyRelatedField):
    """A foreign key to an Owned row: only rows visible to the requesting user are accepted,
    and someone else's row gets the same answer as a row that does not exist."""

    default_error_messages = {
        "does_not_exist": "{pk_value} does not exist or is not yours.",
        "incorrect_type": "Expected an id (a whole number), not {data_type}.",
    }

    # Beyond a 64-bit key the database would fail instead of finding nothing.
    MAX_ID = 2**63 - 1

    def __init__(self, *, check_visibility: bool = True, **kwargs: Any) -> None:
        """check_visibility=False leaves the visibility check to the service (jobs.validation)."""
        super().__init__(**kwargs)
        self.check_visibility = check_visibility
        if self.queryset is not None:
            label = str(self.queryset.model._meta.verbose_name).capitalize()
            self.error_messages["does_not_exist"] = f"{label} {{pk_value}} does not exist or is not yours."

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, str)):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if isinstance(data, str) and not (data.isascii() and data.isdigit()):
            self.fail("incorrect_type", data_type="str")
        if not 0 < int(data) <= self.MAX_ID:
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(int(data))

    def get_queryset(self):
        queryset = super().get_queryset()
        if not self.check_visibility:
            return queryset
        request = self.context.get("request")
        return teams.visible(queryset, request) if request else queryset.none()


class OwnedSerializer(serializers.ModelSerializer):
    """team, owner (who created it) and shared (read-only) plus the per-team uniqueness the models'
    constraints demand."""

    team = serializers.SlugRelatedField(
        slug_field="slug",
        read_only=True,
        allow_null=True,
        help_text="The team's slug; null for a shared preset.",
    )
    owner = serializers.UUIDField(
        source="owner_id", read_only=True, allow_null=True, help_text="Who created it."
    )
    shared = serializers.SerializerMethodField(
        help_text="A shared preset (no team): read-only for non-superusers."
    )

    # Fields unique per team (and among shared presets), checked before the database says so.
    unique_per_team: tuple[str, ...] = ()

    def get_shared(self, obj) -> bool:
        return obj.team_id is None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        model = self.Meta.model
        if self.instance is not None:
            team_id = self.instance.team_id
        else:
            team = teams.current_team(self.context["request"])
            team_id = team.pk if team is not None else None
        errors = {}
        for name in self.unique_per_team:
            value = attrs.get(name, getattr(self.instance, name, None))
            clash = model.objects.filter(**{name: value})
            clash = clash.filter(team_id=team_id) if team_id else clash.filter(team__isnull=True)
            if self.instance is not None:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                label = model._meta.get_field(name).verbose_name
                errors[name] = [f"There is already a {model._meta.verbose_name} with this {label}."]
        if errors:
            raise ValidationError(errors)
        return attrs


class InUse(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This row is still in use."
    default_code = "in_use"


class OwnedModelViewSet(ApiViewMixin, viewsets.ModelViewSet):
    """CRUD over an Owned model with the ownership rule above."""

    permission_classes = [permissions.IsAuthenticated, OwnedRowPermission]
    pagination_class = ApiPagination
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return teams.visible(self.queryset.model.objects.all(), self.request).order_by(
            *self.queryset.model._meta.ordering, "pk"
        )

    def perform_create(self, serializer) -> None:
        team = teams.creating_team(self.request)
        if team is not None:
            teams.require_role(self.request.user, team, teams.edit_role(self.queryset.model))
        self._save(serializer, owner=self.request.user, team=team)

    def perform_update(self, serializer) -> None:
        self._save(serializer)

    def perform_destroy(self, instance) -> None:
        try:
            with transaction.atomic():
                instance.delete()
        except ProtectedError as error:
            users = {f"{row._meta.verbose_name} {row.pk}" for row in list(error.protected_objects)[:5]}
            raise InUse(f"Still used by {', '.join(sorted(users))}; change or delete those first.") from error

    def _save(self, serializer, **extra: Any) -> None:
        try:
            with transaction.atomic():
                serializer.save(**extra)
        except IntegrityError as error:
            # A concurrent request won the race the serializer's uniqueness check lost.
            raise ValidationError({"non_field_errors": ["This conflicts with an existing row."]}) from error
