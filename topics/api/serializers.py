from rest_framework import serializers

from accounts.api.ownership import OwnedSerializer
from accounts.api.representation import CompiledRepresentation
from accounts.extra_keys import COLOUR_MESSAGE, HEX_COLOUR
from accounts.plain_text import JSON_MAX, check_json_text

from ..models import Topic

PALETTE_MAX = 16


class TopicSerializer(OwnedSerializer):
    palette = serializers.ListField(
        child=serializers.RegexField(HEX_COLOUR, error_messages={"invalid": COLOUR_MESSAGE}),
        required=False,
        max_length=PALETTE_MAX,
        help_text="Hex colours of the picture cards.",
    )
    extra = serializers.DictField(
        required=False,
        validators=[check_json_text],
        help_text=f"Free-form settings of the topic (a JSON object of at most {JSON_MAX} characters; no "
        "control characters in its keys and strings but tabs and line breaks).",
    )

    unique_per_team = ("name",)

    class Meta:
        model = Topic
        fields = [
            "id",
            "name",
            "prompt_gen_image",
            "prompt_cover_image",
            "prompt_image_prefix",
            "prompt_l4",
            "lora_name",
            "lora_weight",
            "palette",
            "real_clip_ratio",
            "clip_tags",
            "extra",
            "team",
            "owner",
            "shared",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate_palette(self, palette: list[str]) -> list[str]:
        return [colour.upper() for colour in palette]


class TopicBriefSerializer(CompiledRepresentation, serializers.ModelSerializer):
    class Meta:
        model = Topic
        fields = ["id", "name", "prompt_gen_image", "lora_name", "real_clip_ratio"]
