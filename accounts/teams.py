"""Which team a request works in, and what a member may do there: the one access rule.

A row belongs to a team (accounts.models.Owned.team) or to no team (a shared preset). A user reads the
rows of the team they work in and the presets (OwnedQuerySet.visible_to); superusers read everything.
Changing a row needs a role in its team (operator; a channel and its brand: team admin) and never
applies to a preset unless the user is a superuser. Publishing to a team's channel needs publisher.

The team a request works in (`current_team`): in the API the `X-Team` header or the `team` query
parameter (a slug), in the admin the team picked in the header (kept in the session), else the user's
default: the personal team, or the first team the user is a member of.
"""

import re

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Model, QuerySet
from django.utils.text import slugify

from .models import ROLE_RANK, Account, Membership, Role, Team

TEAM_HEADER = "X-Team"
TEAM_PARAMETER = "team"
SLUG = re.compile(r"[-a-zA-Z0-9_]{1,64}")  # Team.slug
SESSION_KEY = "current_team"
_CACHE = "_current_team"


class NotAMember(PermissionDenied):
    """The request names a team the user is not a member of (or no such team: the same answer)."""

    def __init__(self, slug: str) -> None:
        super().__init__(f"You are not a member of the team “{slug[:100]}”.")
        self.slug = slug


class NotATeamName(NotAMember):
    """The request's team is not a slug at all (control characters, spaces, too long)."""

    def __init__(self, slug: str) -> None:
        PermissionDenied.__init__(
            self, f"{slug[:60]!r} is not a team: a team is named by its slug (letters, digits, - and _)."
        )
        self.slug = slug


def role_of(user, team: Team | None) -> str | None:
    """The user's role in `team`, or None. Memberships are read once per user object."""
    if user is None or not user.is_authenticated or team is None:
        return None
    roles = getattr(user, "_team_roles", None)
    if roles is None:
        roles = dict(Membership.objects.filter(user=user).values_list("team_id", "role"))
        user._team_roles = roles
    return roles.get(team.pk)


def has_role(user, team: Team | None, role: str) -> bool:
    """Whether `user` may act as `role` in `team` (superusers may everywhere; nobody in no team)."""
    if user is None or not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    held = role_of(user, team)
    return held is not None and ROLE_RANK[Role(held)] >= ROLE_RANK[Role(role)]


def require_role(user, team: Team | None, role: str) -> None:
    """Refuse (PermissionDenied naming the team and the role) unless `user` may act as `role` in `team`."""
    if has_role(user, team, role):
        return
    if team is None:
        raise PermissionDenied("Shared presets can only be changed by a superuser.")
    raise PermissionDenied(f"This needs the role {Role(role).label.lower()} in the team “{team.slug}”.")


def edit_role(model: type[Model]) -> str:
    """The role that changes rows of `model`: a team's channels and brand are its admins'."""
    return Role.ADMIN if issubclass(model, Account) else Role.OPERATOR


def may_read(user, row) -> bool:
    if user is None or not user.is_authenticated:
        return False
    return user.is_superuser or row.team_id is None or role_of(user, row.team) is not None


def may_edit(user, row) -> bool:
    """Whether `user` may change or delete `row`: a role in its team; a preset: superusers only."""
    if user is None or not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return row.team_id is not None and has_role(user, row.team, edit_role(type(row)))


def usable_in(row, team: Team | None) -> bool:
    """Whether a row of `team` may point at `row`: the same team's rows and the presets."""
    return row.team_id is None or (team is not None and row.team_id == team.pk)


def teams_of(user) -> QuerySet[Team]:
    if user is None or not user.is_authenticated:
        return Team.objects.none()
    return Team.objects.filter(memberships__user=user).order_by("name", "id")


def default_team(user) -> Team | None:
    """The user's personal team while still a member of it, else the first of the user's teams."""
    teams = teams_of(user)
    return teams.filter(personal_of=user).first() or teams.first()


def team_named(user, slug: str) -> Team:
    """The team `slug`, which `user` must be a member of (superusers: any team)."""
    if not SLUG.fullmatch(slug):
        raise NotATeamName(slug)
    team = Team.objects.filter(slug=slug).first()
    if team is None or not (user.is_superuser or role_of(user, team) is not None):
        raise NotAMember(slug)
    return team


def current_team(request) -> Team | None:
    """The team `request` works in (module docstring); None for a user in no team."""
    cached = getattr(request, _CACHE, False)
    if cached is not False:
        return cached
    user = getattr(request, "user", None)
    slug = request.headers.get(TEAM_HEADER) or request.GET.get(TEAM_PARAMETER)
    session = getattr(request, "session", None)
    if not slug and session is not None and session.get(SESSION_KEY):
        try:
            team = team_resolve(user, session[SESSION_KEY])
        except NotAMember:  # the picked team was deleted, or the user left it, since
            del session[SESSION_KEY]
        else:
            setattr(request, _CACHE, team)
            return team
    team = team_resolve(user, slug)
    setattr(request, _CACHE, team)
    return team


def team_resolve(user, slug: str | None) -> Team | None:
    """The team `slug` names (a member's only), else the user's default: current_team's rule for a
    request, and the websocket's (its `team` query parameter)."""
    if user is None or not user.is_authenticated:
        return None
    slug = (slug or "").strip()
    return team_named(user, slug) if slug else default_team(user)


def team_switch(request, slug: str) -> Team:
    """Work in the team `slug` from now on (the admin's team picker)."""
    team = team_named(request.user, slug)
    request.session[SESSION_KEY] = team.slug
    setattr(request, _CACHE, team)
    return team


def visible(queryset: QuerySet, request) -> QuerySet:
    """`queryset` (of an Owned model) as `request` may read it: its team's rows and the presets."""
    return queryset.visible_to(request.user, current_team(request))


def creating_team(request) -> Team | None:
    """The team a row created by `request` belongs to: the current team, where the user may edit.
    A superuser in no team creates shared presets."""
    team = current_team(request)
    if team is None:
        if request.user.is_superuser:
            return None
        raise PermissionDenied("You are not a member of any team; ask a team admin to add you.")
    require_role(request.user, team, Role.OPERATOR)
    return team


# ---------------------------------------------------------------- teams and members


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "team"
    slug, number = base, 1
    while Team.objects.filter(slug=slug).exists():
        number += 1
        slug = f"{base}-{number}"
    return slug


@transaction.atomic
def team_create(*, name: str, admin=None, personal: bool = False) -> Team:
    """A team, its slug made from the name; `admin` its first member (and, with personal, its owner)."""
    team = Team.objects.create(
        name=name, slug=_unique_slug(name), personal_of=admin if personal and admin else None
    )
    if admin is not None:
        Membership.objects.create(team=team, user=admin, role=Role.ADMIN)
    return team


def _keep_an_admin(team: Team, user) -> None:
    others = Membership.objects.filter(team=team, role=Role.ADMIN).exclude(user=user)
    if not others.exists():
        raise ValidationError(
            f"The team “{team.slug}” needs another admin before {user.username} stops being one."
        )


@transaction.atomic
def member_set(*, team: Team, user, role: str, by) -> Membership:
    """Add `user` to `team` with `role`, or change the role; `by` must be the team's admin."""
    require_role(by, team, Role.ADMIN)
    if role not in Role.values:
        raise ValidationError({"role": [f"Unknown role {role!r}; choose one of {', '.join(Role.values)}."]})
    if role != Role.ADMIN and Membership.objects.filter(team=team, user=user, role=Role.ADMIN).exists():
        _keep_an_admin(team, user)
    membership, _ = Membership.objects.update_or_create(team=team, user=user, defaults={"role": role})
    return membership


@transaction.atomic
def member_remove(*, team: Team, user, by) -> None:
    require_role(by, team, Role.ADMIN)
    membership = Membership.objects.filter(team=team, user=user).first()
    if membership is None:
        raise ValidationError(f"{user.username} is not a member of the team “{team.slug}”.")
    if membership.role == Role.ADMIN:
        _keep_an_admin(team, user)
    membership.delete()
