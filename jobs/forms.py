"""Admin forms of the batch import steps."""

from django import forms


class ImportUploadForm(forms.Form):
    file = forms.FileField(help_text="CSV with a header row, or JSON: a list of objects.")


class ImportConfirmForm(forms.Form):
    """The uploaded text travels back with the preview, so confirming re-checks exactly what was shown."""

    payload = forms.CharField(widget=forms.HiddenInput)
    filename = forms.CharField(widget=forms.HiddenInput)
    enqueue = forms.BooleanField(required=False, label="Queue the new jobs for rendering")
