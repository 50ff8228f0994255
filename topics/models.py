from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from accounts.models import Owned
from accounts.plain_text import check_json_text, check_multiline, check_single_line

PROMPT_MAX = 2000
# A LoRA is a file or folder in the render hosts' LORA_DIR, named plainly: no absolute path, ".." or
# separator, so a topic cannot make a render load a file from anywhere else.
LORA_NAME = RegexValidator(
    r"\A(?!.*\.\.)\w[\w .-]*\Z",
    "Must be a plain file name in the LoRA folder (letters, digits, spaces, ., - and _), not a path.",
)


def default_palette() -> list[str]:
    return ["#1F3A5F", "#4D7EA8", "#F2E8CF"]


class Topic(Owned):
    """The visual style of a channel's videos: prompts, LoRA, palette, real-clip share."""

    name = models.CharField(max_length=255, validators=[check_single_line])
    prompt_gen_image = models.TextField(
        blank=True,
        max_length=PROMPT_MAX,
        validators=[check_multiline],
        help_text="Image prompt for every segment.",
    )
    prompt_cover_image = models.TextField(
        blank=True,
        max_length=PROMPT_MAX,
        validators=[check_multiline],
        help_text="Prompt for the cover picture.",
    )
    prompt_image_prefix = models.TextField(
        blank=True,
        max_length=PROMPT_MAX,
        validators=[check_multiline],
        help_text="Put before every image prompt.",
    )
    prompt_l4 = models.TextField(
        blank=True,
        max_length=PROMPT_MAX,
        validators=[check_multiline],
        help_text="Extra style prompt (seed's L4 level).",
    )
    lora_name = models.CharField(
        max_length=255,
        blank=True,
        validators=[LORA_NAME],
        help_text="A file or folder in the LoRA folder, e.g. warm-photo.safetensors.",
    )
    lora_weight = models.PositiveSmallIntegerField(
        default=100, validators=[MaxValueValidator(200)], help_text="100 = full strength."
    )
    palette = models.JSONField(default=default_palette, blank=True, help_text="Hex colours for cards.")
    real_clip_ratio = models.FloatField(
        default=0.25,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of segments that get a real clip from the library (0-1).",
    )
    clip_tags = models.CharField(
        max_length=255,
        blank=True,
        validators=[check_single_line],
        help_text="Comma-separated tags preferred when picking clips.",
    )
    extra = models.JSONField(default=dict, blank=True, validators=[check_json_text])

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="topic_unique_per_team"),
            models.UniqueConstraint(
                fields=["name"], condition=Q(team__isnull=True), name="topic_unique_shared"
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
