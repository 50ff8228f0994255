from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from accounts.models import Owned


def default_palette() -> list[str]:
    return ["#1F3A5F", "#4D7EA8", "#F2E8CF"]


class Topic(Owned):
    """The visual style of a channel's videos: prompts, LoRA, palette, real-clip share."""

    name = models.CharField(max_length=255)
    prompt_gen_image = models.TextField(blank=True, help_text="Image prompt for every segment.")
    prompt_cover_image = models.TextField(blank=True, help_text="Prompt for the cover picture.")
    prompt_image_prefix = models.TextField(blank=True, help_text="Put before every image prompt.")
    prompt_l4 = models.TextField(blank=True, help_text="Extra style prompt (seed's L4 level).")
    lora_name = models.CharField(max_length=255, blank=True)
    lora_weight = models.PositiveSmallIntegerField(
        default=100, validators=[MaxValueValidator(200)], help_text="100 = full strength."
    )
    palette = models.JSONField(default=default_palette, blank=True, help_text="Hex colours for cards.")
    real_clip_ratio = models.FloatField(
        default=0.25, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of segments that get a real clip from the library (0-1).",
    )
    clip_tags = models.CharField(
        max_length=255, blank=True, help_text="Comma-separated tags preferred when picking clips."
    )
    extra = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="topic_unique_per_owner"),
            models.UniqueConstraint(
                fields=["name"], condition=Q(owner__isnull=True), name="topic_unique_shared"
            ),
            models.CheckConstraint(
                condition=Q(real_clip_ratio__gte=0) & Q(real_clip_ratio__lte=1),
                name="topic_real_clip_ratio_range",
            ),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def tag_set(self) -> set[str]:
        return {tag.strip().lower() for tag in self.clip_tags.split(",") if tag.strip()}
