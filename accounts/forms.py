"""The admin's account form: the brand profile (`accounts.brand`) as form fields instead of raw JSON.

There is one field per brand key, built from the key's spec. The fields only turn form text into
JSON values; `check_account_extra` alone judges them, so the admin refuses exactly what the API
refuses, with the same words.
"""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile

from accounts.uploads import check_image

from .brand import ACCOUNT_EXTRA, NEUTRAL_BOX_COLOUR, Brand, check_account_extra
from .extra_keys import HEX_COLOUR
from .json_text import DepthCheckedDecoder
from .models import Account

BRAND_FIELDS = list(ACCOUNT_EXTRA)


class ColourInput(forms.TextInput):
    input_type = "color"


class NumberField(forms.CharField):
    """A number typed in a form; text that is no number goes on as it is, for the key's check to refuse."""

    def __init__(self, *, whole: bool, **kwargs) -> None:
        self.whole = whole
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> int | float | str | None:
        text = super().to_python(value)
        if text == "":
            return None
        try:
            number = float(text)
        except ValueError:
            return text
        return int(number) if self.whole and number.is_integer() else number


class UncheckedMultipleChoiceField(forms.MultipleChoiceField):
    """Offers the choices and leaves refusing others to the key's check."""

    def valid_value(self, value: str) -> bool:
        return True


def brand_field(name: str, *, initial: Any = None) -> forms.Field:
    """The form field of a brand key, from its schema."""
    schema = ACCOUNT_EXTRA[name].schema
    options = {"required": False, "help_text": schema["description"], "initial": initial}
    kind = schema["type"]
    if kind == "boolean":
        return forms.NullBooleanField(**options)
    if kind in ("integer", "number"):
        whole = kind == "integer"
        attrs = {"min": schema["minimum"], "max": schema["maximum"], "step": 1 if whole else "any"}
        return NumberField(whole=whole, widget=forms.NumberInput(attrs=attrs), **options)
    if kind == "array":
        choices = [(value, value) for value in schema["items"]["enum"]]
        return UncheckedMultipleChoiceField(
            choices=choices, widget=forms.SelectMultiple(attrs={"size": 6}), **options
        )
    if kind == "object":
        options["help_text"] += f" A JSON object with the keys {', '.join(schema['properties'])}."
        return forms.JSONField(decoder=DepthCheckedDecoder, **options)
    if "enum" in schema:
        choices = [("", "—"), *[(value, value) for value in schema["enum"]]]
        return forms.CharField(widget=forms.Select(choices=choices), **options)
    if schema.get("pattern") == HEX_COLOUR.pattern:
        return forms.CharField(widget=ColourInput, **options)
    return forms.CharField(widget=forms.TextInput(attrs={"maxlength": schema["maxLength"]}), **options)


class AccountForm(forms.ModelForm):
    """The brand profile as form fields; a field left empty leaves its key unset (the brand default)."""

    # A colour input always sends a colour: the checkbox says whether the box colour is the brand's own
    # (unset, the renderer draws a see-through black box).
    subtitle_background_custom = forms.BooleanField(required=False, label="Own subtitle box colour")
    subtitle_background = brand_field("subtitle_background", initial=NEUTRAL_BOX_COLOUR)
    subtitle_background_opacity = brand_field("subtitle_background_opacity")
    subtitle_color = brand_field("subtitle_color", initial=Brand().subtitle_color)
    subtitle_font = brand_field("subtitle_font")
    subtitle_font_size = brand_field("subtitle_font_size")
    subtitle_karaoke = brand_field("subtitle_karaoke")
    enable_transition = brand_field("enable_transition")
    transition_types = brand_field("transition_types")
    enable_srt_concat_transition = brand_field("enable_srt_concat_transition")
    srt_concat_transition_types = brand_field("srt_concat_transition_types")
    transition_s = brand_field("transition_s")
    logo_corner = brand_field("logo_corner")
    logo_scale = brand_field("logo_scale")
    logo_margin = brand_field("logo_margin")
    music_volume = brand_field("music_volume")
    video_crf = brand_field("video_crf")
    video_preset = brand_field("video_preset")
    renditions = brand_field("renditions")
    keep_plain_video = brand_field("keep_plain_video")
    human_insertion_mode = brand_field("human_insertion_mode")
    human_config = brand_field("human_config")
    burn_subtitles = brand_field("burn_subtitles")
    loudness_lufs = brand_field("loudness_lufs")

    class Meta:
        model = Account
        fields = ["username", "platform", "area", "logo", "team", "owner"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        extra = self.instance.extra or {}
        for name in BRAND_FIELDS:
            if name in extra:
                self.initial[name] = extra[name]
        self.initial["subtitle_background_custom"] = "subtitle_background" in extra

    def clean_logo(self) -> Any:
        """An uploaded logo gets the API's picture checks (and its generated name)."""
        logo = self.cleaned_data["logo"]
        return check_image(logo) if isinstance(logo, UploadedFile) else logo

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # Keys that are no brand key are kept, so the check names them instead of dropping them silently.
        extra = {key: value for key, value in (self.instance.extra or {}).items() if key not in BRAND_FIELDS}
        for name in BRAND_FIELDS:
            value = cleaned.get(name)
            if value not in self.fields[name].empty_values:
                extra[name] = value
        if not cleaned.get("subtitle_background_custom"):
            extra.pop("subtitle_background", None)
        try:
            self.brand_extra = check_account_extra(extra)
        except ValidationError as error:
            for name, messages in error.message_dict.items():
                if name in self.fields:
                    self.add_error(name, messages)
                else:
                    self.add_error(None, [f"{name}: {message}" for message in messages])
        return cleaned

    def save(self, commit: bool = True) -> Account:
        self.instance.extra = getattr(self, "brand_extra", self.instance.extra)
        return super().save(commit)
