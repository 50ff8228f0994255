import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q

from .plain_text import check_single_line


class User(AbstractUser):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)


class Role(models.TextChoices):
    """A member's role in a team; each role may do what the ones before it may."""

    OPERATOR = "operator", "Operator"  # reads and edits the team's rows: jobs, storyboards, renders
    PUBLISHER = "publisher", "Publisher"  # and publishes to the team's channels
    ADMIN = "admin", "Team admin"  # and manages the team's members, channels and brand


ROLE_RANK = {Role.OPERATOR: 1, Role.PUBLISHER: 2, Role.ADMIN: 3}


class Team(models.Model):
    """People who share their jobs, channels, voices, topics, clips and webhooks (accounts.teams)."""

    name = models.CharField(max_length=255, validators=[check_single_line])
    slug = models.SlugField(max_length=64, unique=True, help_text="Names the team in the API (X-Team).")
    weight = models.FloatField(default=1.0, help_text="The team's share of the workers, against the others'.")
    personal_of = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="personal_team",
        help_text="The user whose own team this is: the user's default team.",
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="teams")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.OPERATOR)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="membership_unique_per_team")]
        ordering = ["team__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"

    def allows(self, role: str) -> bool:
        """Whether this member's role includes `role`."""
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(role)]


class OwnedQuerySet(models.QuerySet):
    def visible_to(self, user, team: "Team | None" = None) -> "OwnedQuerySet":
        """What `user` may read while working in `team`: the team's rows and the shared presets (no
        team); superusers see everything. accounts.teams decides which team a request works in."""
        if user is None or not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self
        return self.usable_in(team)

    def usable_in(self, team: "Team | None") -> "OwnedQuerySet":
        """The rows a row of `team` may use: the team's and the shared presets."""
        if team is None:
            return self.filter(team__isnull=True)
        return self.filter(Q(team=team) | Q(team__isnull=True))

    def of_team(self, team: "Team | None") -> "OwnedQuerySet":
        """The team's own rows, no presets."""
        return self.none() if team is None else self.filter(team=team)


class Owned(models.Model):
    """A row that belongs to a team; a row without a team is a shared preset (read-only for teams)."""

    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Empty for a shared preset every team can use (only superusers change presets).",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Who created it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        abstract = True

    @property
    def is_preset(self) -> bool:
        return self.team_id is None


class Account(Owned):
    """A publishing channel and its brand profile."""

    username = models.CharField(max_length=255, validators=[check_single_line])
    logo = models.ImageField(upload_to="accounts/logos/", blank=True)
    platform = models.CharField(max_length=64, default="youtube", validators=[check_single_line])
    area = models.CharField(max_length=255, blank=True, validators=[check_single_line])
    extra = models.JSONField(
        default=dict,
        blank=True,
        help_text="Brand profile: subtitle_background, subtitle_color, transition_types, "
        "logo_corner, human_insertion_mode, human_config, ...",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "username"], name="account_unique_per_team"),
            models.UniqueConstraint(
                fields=["username"], condition=Q(team__isnull=True), name="account_unique_shared"
            ),
        ]
        ordering = ["username"]

    def __str__(self) -> str:
        return f"{self.username} ({self.platform})"


class ChannelCredentials(models.Model):
    """An Account's OAuth grant for its YouTube channel. The refresh token is stored encrypted
    (accounts.channels) and never shown again: not in the admin, the API, exports or logs."""

    account = models.OneToOneField(Account, on_delete=models.CASCADE, related_name="channel_credentials")
    refresh_token_encrypted = models.BinaryField(editable=False)
    scopes = models.CharField(max_length=500, blank=True, editable=False)
    connected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    connected_at = models.DateTimeField(editable=False)
    problem = models.CharField(
        max_length=500,
        blank=True,
        editable=False,
        help_text="Why publishing cannot use this grant (Google revoked it): connect the channel again.",
    )

    class Meta:
        verbose_name = "channel connection"
        ordering = ["account__username"]

    def __str__(self) -> str:
        return f"YouTube connection of {self.account.username}"
