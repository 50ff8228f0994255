from django import forms
from django.contrib import admin
from django.utils.html import format_html_join

from accounts.admin import OwnedAdmin
from accounts.extra_keys import HEX_COLOUR

from .models import Topic


class PaletteField(forms.CharField):
    """A palette typed as a comma list of #RRGGBB colours."""

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(value)
        return value

    def to_python(self, value) -> list[str]:
        colours = [part.strip() for part in (value or "").split(",") if part.strip()]
        bad = [colour for colour in colours if not HEX_COLOUR.match(colour)]
        if bad:
            raise forms.ValidationError(f"Not colours of the form #RRGGBB: {', '.join(bad)}.")
        return [colour.upper() for colour in colours]


class TopicForm(forms.ModelForm):
    palette = PaletteField(
        required=False,
        help_text="Comma-separated, e.g. #1F3A5F, #4D7EA8, #F2E8CF.",
        widget=forms.TextInput(attrs={"size": 60}),
    )
    real_clip_ratio = forms.FloatField(
        min_value=0,
        max_value=1,
        widget=forms.NumberInput(
            attrs={"type": "range", "min": 0, "max": 1, "step": 0.05, "oninput": "this.title=this.value"}
        ),
        help_text="Share of segments that get a real clip from the library (0-1).",
    )

    class Meta:
        model = Topic
        fields = [
            "team",
            "owner",
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
        ]


@admin.register(Topic)
class TopicAdmin(OwnedAdmin):
    form = TopicForm
    list_display = [
        "name",
        "palette_swatches",
        "lora_name",
        "lora_weight",
        "real_clip_ratio",
        "team",
        "owner",
        "updated_at",
    ]
    list_filter = ["lora_name"]
    search_fields = ["name", "prompt_gen_image"]
    list_select_related = ["team", "owner"]
    readonly_fields = ["palette_swatches"]

    @admin.display(description="Palette")
    def palette_swatches(self, obj: Topic) -> str:
        colours = [
            colour for colour in obj.palette or [] if isinstance(colour, str) and HEX_COLOUR.match(colour)
        ]
        return (
            format_html_join(
                "",
                '<span title="{}" style="display:inline-block;width:16px;height:16px;background:{};'
                'border:1px solid #999;margin-right:2px"></span>',
                ((colour, colour) for colour in colours),
            )
            or "-"
        )
