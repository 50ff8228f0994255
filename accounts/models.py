import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q

from .plain_text import check_single_line


class User(AbstractUser):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)


class OwnedQuerySet(models.QuerySet):
    def visible_to(self, user) -> "OwnedQuerySet":
        """The user's own rows and the shared presets (no owner); superusers see everything."""
        if user is None or not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self
        return self.filter(Q(owner=user) | Q(owner__isnull=True))


class Owned(models.Model):
    """A row that belongs to a user; a row without an owner is a shared preset."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Empty for a shared preset everyone can use.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        abstract = True

    def is_visible_to(self, user) -> bool:
        if user is None or not user.is_authenticated:
            return False
        return user.is_superuser or self.owner_id is None or self.owner_id == user.pk


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
            models.UniqueConstraint(fields=["owner", "username"], name="account_unique_per_owner"),
            models.UniqueConstraint(
                fields=["username"], condition=Q(owner__isnull=True), name="account_unique_shared"
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
