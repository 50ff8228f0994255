"""/api/v1/teams/: the teams the user is a member of, with the user's role, and their members
(listed for every member, changed by the team's admins). The rule is accounts.teams'."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import teams
from accounts.models import Membership, Role, Team, User

from .docs import ERROR_401, ERROR_404, detail_response, request_example, response_example, validation_error
from .ownership import ApiViewMixin

ERROR_403_ADMIN = detail_response(
    "Not the team's admin", "This needs the role team admin in the team “health”."
)
TEAM_EXAMPLE = {
    "slug": "health",
    "name": "Health tips",
    "role": "publisher",
    "personal": False,
    "current": True,
}
MEMBER_EXAMPLE = {"username": "editor", "role": "operator", "since": "2026-12-01T12:00:00Z"}


class TeamSerializer(serializers.Serializer):
    slug = serializers.SlugField(help_text="Names the team in the X-Team header or the team parameter.")
    name = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices, help_text="Your role in the team.")
    personal = serializers.BooleanField(help_text="Your personal team (your default).")
    current = serializers.BooleanField(help_text="The team this request worked in.")


class MemberSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)
    since = serializers.DateTimeField(read_only=True)


class RoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


def _member(membership: Membership) -> dict:
    return {"username": membership.user.username, "role": membership.role, "since": membership.created_at}


def _team(request, slug: str) -> Team:
    """A team the requesting user is a member of (superusers: any); else 404 naming it."""
    try:
        return teams.team_named(request.user, slug)
    except teams.NotAMember as error:
        raise NotFound(str(error)) from error


class TeamListView(ApiViewMixin, APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        summary="Your teams",
        tags=["teams"],
        responses={200: TeamSerializer(many=True), 401: ERROR_401},
        examples=[response_example("Teams", [TEAM_EXAMPLE])],
        description="The teams you are a member of, with your role: operator (reads and edits the team's "
        "jobs, storyboards and renders), publisher (and publishes to its channels), admin (and manages its "
        "members, channels and brand). Name one in the X-Team header (or the team parameter) of any request; "
        "without it a request works in your personal team, else your first.",
    )
    def get(self, request) -> Response:
        current = teams.current_team(request)
        rows = Membership.objects.filter(user=request.user).select_related("team").order_by("team__name")
        return Response(
            [
                {
                    "slug": row.team.slug,
                    "name": row.team.name,
                    "role": row.role,
                    "personal": row.team.personal_of_id == request.user.pk,
                    "current": current is not None and row.team_id == current.pk,
                }
                for row in rows
            ]
        )


class MemberListView(ApiViewMixin, APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        summary="A team's members",
        tags=["teams"],
        responses={200: MemberSerializer(many=True), 401: ERROR_401, 404: ERROR_404},
        examples=[response_example("Members", [MEMBER_EXAMPLE])],
    )
    def get(self, request, slug: str) -> Response:
        team = _team(request, slug)
        rows = team.memberships.select_related("user").order_by("user__username")
        return Response([_member(row) for row in rows])

    @extend_schema(
        summary="Add a member",
        tags=["teams"],
        request=MemberSerializer,
        responses={
            201: MemberSerializer,
            400: validation_error({"username": ["No user “editr”."]}),
            403: ERROR_403_ADMIN,
            404: ERROR_404,
        },
        examples=[request_example("A new operator", {"username": "editor", "role": "operator"})],
        description="Team admins only. Adding someone already a member sets their role.",
    )
    def post(self, request, slug: str) -> Response:
        team = _team(request, slug)
        serializer = MemberSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        username = serializer.validated_data["username"]
        user = User.objects.filter(username=username, is_active=True).first()
        teams.require_role(request.user, team, Role.ADMIN)
        if user is None:
            raise DjangoValidationError({"username": [f"No user “{username}”."]})
        membership = teams.member_set(
            team=team, user=user, role=serializer.validated_data["role"], by=request.user
        )
        return Response(_member(membership), status=status.HTTP_201_CREATED)


class MemberView(ApiViewMixin, APIView):
    permission_classes = [permissions.IsAuthenticated]

    def _membership(self, request, slug: str, username: str) -> Membership:
        team = _team(request, slug)
        if "\x00" in username:  # no user has one, and PostgreSQL refuses it in a query
            raise NotFound("No such member.")
        return get_object_or_404(
            Membership.objects.select_related("team", "user"), team=team, user__username=username
        )

    @extend_schema(
        summary="Change a member's role",
        tags=["teams"],
        request=RoleSerializer,
        responses={
            200: MemberSerializer,
            400: validation_error({"role": ["“boss” is not a valid choice."]}),
            403: ERROR_403_ADMIN,
            404: ERROR_404,
        },
        examples=[request_example("Make a publisher", {"role": "publisher"})],
        description="Team admins only. A team keeps at least one admin.",
    )
    def patch(self, request, slug: str, username: str) -> Response:
        membership = self._membership(request, slug, username)
        serializer = RoleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = teams.member_set(
            team=membership.team,
            user=membership.user,
            role=serializer.validated_data["role"],
            by=request.user,
        )
        return Response(_member(membership))

    @extend_schema(
        summary="Remove a member",
        tags=["teams"],
        responses={
            204: None,
            400: validation_error(
                {"non_field_errors": ["The team “health” needs another admin before editor stops being one."]}
            ),
            403: ERROR_403_ADMIN,
            404: ERROR_404,
        },
        description="Team admins only. A team keeps at least one admin.",
    )
    def delete(self, request, slug: str, username: str) -> Response:
        membership = self._membership(request, slug, username)
        teams.member_remove(team=membership.team, user=membership.user, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
