from django.db import models
from django.db.models import Q

from accounts.models import Owned
from accounts.plain_text import check_single_line


class Language(Owned):
    """A narration language and the TTS platform that speaks it."""

    code = models.CharField(
        max_length=32, validators=[check_single_line], help_text="BCP-47 code, e.g. zh-CN, en-US."
    )
    name = models.CharField(
        max_length=255, validators=[check_single_line], help_text="Display name, e.g. 中文."
    )
    platform = models.CharField(
        max_length=64,
        default="espeak",
        validators=[check_single_line],
        help_text="TTS backend: espeak (offline), seedvc, azure or edge.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "code"], name="language_unique_per_team"),
            models.UniqueConstraint(
                fields=["code"], condition=Q(team__isnull=True), name="language_unique_shared"
            ),
        ]
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Voice(Owned):
    name = models.CharField(
        max_length=255,
        validators=[check_single_line],
        help_text="The backend's voice name, e.g. cmn for espeak-ng.",
    )
    language = models.ForeignKey(
        Language, null=True, blank=True, on_delete=models.SET_NULL, related_name="voices"
    )
    reference = models.FileField(
        upload_to="voices/references/",
        blank=True,
        help_text="Reference audio for voice-cloning backends.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
