"""Admin forms: the job page, the batch import steps and the clip library."""

from typing import Any

from django import forms
from django.contrib.admin import widgets
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile

from accounts.uploads import checked_clip
from jobs.models import StockClip
from jobs.validation import PUBLISH_TITLE_MAX, clean_job_input


class ImportUploadForm(forms.Form):
    file = forms.FileField(help_text="CSV with a header row, or JSON: a list of objects.")


class ImportConfirmForm(forms.Form):
    """The uploaded text travels back with the preview, so confirming re-checks exactly what was shown."""

    payload = forms.CharField(widget=forms.HiddenInput)
    filename = forms.CharField(widget=forms.HiddenInput)
    enqueue = forms.BooleanField(required=False, label="Queue the new jobs for rendering")


class JobAdminForm(forms.ModelForm):
    """The job page's form. The job rules are the services' own (jobs.validation.clean_job_input),
    checked here so that their errors show on their fields in the API's words; JobAdmin.save_model
    then writes the checked input through job_create/job_update."""

    # Not required, no length limit here: clean_job_input cleans them and says what is wrong.
    title = forms.CharField(required=False, strip=False, widget=widgets.AdminTextInputWidget)
    content = forms.CharField(required=False, strip=False, widget=widgets.AdminTextareaWidget)
    # One line, as YouTube shows it; the browser stops at the limit, clean_publish_title says why past it.
    publish_title = forms.CharField(
        required=False,
        strip=False,
        widget=widgets.AdminTextInputWidget(attrs={"maxlength": PUBLISH_TITLE_MAX}),
    )

    user = None  # who is saving; JobAdmin.get_form sets it
    team = None  # the team of the job (a new job: the current team); JobAdmin.get_form sets it
    job_input: dict[str, Any]  # the checked fields for the service, set by clean()

    def clean(self) -> dict[str, Any]:
        cleaned_data = super().clean()
        try:
            self.job_input = clean_job_input(self.user, self.service_fields(), team=self.team)
        except ValidationError as error:
            for field, errors in error.error_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        else:
            cleaned_data.update(self.job_input)  # the model validates (and the page shows) what is saved
        return cleaned_data

    def service_fields(self) -> dict[str, Any]:
        """What job_create gets (every field) or job_update gets (the changed ones, like a PATCH).
        The owner and team are not job rules: JobAdmin.save_model sets them for superusers."""
        adding = self.instance.pk is None
        data = {
            name: value
            for name, value in self.cleaned_data.items()
            if name not in ("owner", "team") and (adding or name in self.changed_data)
        }
        narration = data.pop("narration_audio", None)
        if narration is False:  # the "clear" box
            data["narration_audio"] = ""
        elif narration is not None:
            data["narration_audio"] = narration
        if "extra" in data and data["extra"] is None:  # an emptied box: no options
            data["extra"] = {}
        return data


class StockClipForm(forms.ModelForm):
    """An uploaded clip gets the API's checks here; StockClipAdmin.save_model then stores it the way
    the API does (services.clip_set_file: a generated name, duration and size read from the file)."""

    class Meta:
        model = StockClip
        fields = ["file", "title", "tags", "source", "licence", "team", "owner"]

    def clean_file(self) -> Any:
        uploaded = self.cleaned_data["file"]
        if isinstance(uploaded, UploadedFile):
            with checked_clip(uploaded):
                pass
        return uploaded
