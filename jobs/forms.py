"""Admin forms: the batch import steps and the account brand profile."""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from accounts.brand import TRANSITIONS, check_account_extra
from accounts.models import Account
from media_engine.compose import LOGO_CORNERS


class ImportUploadForm(forms.Form):
    file = forms.FileField(help_text="CSV with a header row, or JSON: a list of objects.")


class ImportConfirmForm(forms.Form):
    """The uploaded text travels back with the preview, so confirming re-checks exactly what was shown."""

    payload = forms.CharField(widget=forms.HiddenInput)
    filename = forms.CharField(widget=forms.HiddenInput)
    enqueue = forms.BooleanField(required=False, label="Queue the new jobs for rendering")


class ColourInput(forms.TextInput):
    input_type = "color"


BRAND_FIELDS = ["subtitle_background", "subtitle_background_opacity", "subtitle_color", "subtitle_font",
                "subtitle_font_size", "enable_transition", "transition_types", "transition_s", "logo_corner"]


class AccountForm(forms.ModelForm):
    """The brand profile as form fields instead of raw JSON; other extra keys are kept as they are."""

    # A colour input always sends a colour: the checkbox says whether the box colour is the brand's own
    # (unset, the renderer draws a see-through black box).
    subtitle_background_custom = forms.BooleanField(required=False, label="Own subtitle box colour")
    subtitle_background = forms.CharField(required=False, widget=ColourInput, initial="#000000")
    subtitle_background_opacity = forms.FloatField(required=False, min_value=0, max_value=1)
    subtitle_color = forms.CharField(required=False, widget=ColourInput, label="Subtitle colour",
                                     initial="#FFFFFF")
    subtitle_font = forms.CharField(required=False, max_length=255)
    subtitle_font_size = forms.IntegerField(required=False, min_value=8, max_value=400)
    enable_transition = forms.NullBooleanField(required=False, widget=forms.NullBooleanSelect)
    transition_types = forms.MultipleChoiceField(
        required=False, choices=[(name, name) for name in TRANSITIONS],
        help_text="The first one is used.", widget=forms.SelectMultiple(attrs={"size": 6}),
    )
    transition_s = forms.FloatField(required=False, min_value=0, max_value=5, label="Transition length (s)")
    logo_corner = forms.ChoiceField(required=False, choices=[("", "—"), *[(c, c) for c in LOGO_CORNERS]])

    class Meta:
        model = Account
        fields = ["username", "platform", "area", "logo", "owner"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        extra = self.instance.extra or {}
        for name in BRAND_FIELDS:
            if name in extra:
                self.initial[name] = extra[name]
        self.initial["subtitle_background_custom"] = "subtitle_background" in extra

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        extra = {key: value for key, value in (self.instance.extra or {}).items() if key not in BRAND_FIELDS}
        for name in BRAND_FIELDS:
            value = cleaned.get(name)
            if value not in (None, "", []):
                extra[name] = value
        if not cleaned.get("subtitle_background_custom"):
            extra.pop("subtitle_background", None)
        try:
            self.brand_extra = check_account_extra(extra)
        except ValidationError as error:
            for name, messages in error.message_dict.items():
                self.add_error(name if name in self.fields else None, messages)
        return cleaned

    def save(self, commit: bool = True) -> Account:
        self.instance.extra = getattr(self, "brand_extra", self.instance.extra)
        return super().save(commit)
