from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.files.uploadedfile import UploadedFile
from django.utils.html import format_html

from accounts.admin import OwnedAdmin
from accounts.uploads import check_audio

from .models import Language, Voice


@admin.register(Language)
class LanguageAdmin(OwnedAdmin):
    list_display = ["code", "name", "platform", "team", "owner", "updated_at"]
    list_filter = ["platform"]
    search_fields = ["code", "name"]
    list_select_related = ["team", "owner"]


class VoiceForm(forms.ModelForm):
    def clean_reference(self):
        """An uploaded reference gets the API's audio checks (and its generated name)."""
        reference = self.cleaned_data["reference"]
        return check_audio(reference) if isinstance(reference, UploadedFile) else reference


@admin.register(Voice)
class VoiceAdmin(OwnedAdmin):
    form = VoiceForm
    list_display = ["name", "language", "reference_player", "team", "owner", "updated_at"]
    list_filter = ["language"]
    search_fields = ["name"]
    list_select_related = ["language", "team", "owner"]
    autocomplete_fields = ["language"]
    readonly_fields = ["reference_player"]

    @admin.display(description="Reference audio")
    def reference_player(self, obj: Voice) -> str:
        if not obj.reference:
            return "-"
        return format_html(
            '<audio controls preload="none" src="{}"></audio>',
            obj.reference.storage.url(obj.reference.name, expire=settings.ADMIN_SIGNED_URL_EXPIRE_SECONDS),
        )
