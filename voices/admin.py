from django.contrib import admin
from django.utils.html import format_html

from accounts.admin import OwnedAdmin

from .models import Language, Voice


@admin.register(Language)
class LanguageAdmin(OwnedAdmin):
    list_display = ["code", "name", "platform", "owner", "updated_at"]
    list_filter = ["platform"]
    search_fields = ["code", "name"]
    list_select_related = ["owner"]


@admin.register(Voice)
class VoiceAdmin(OwnedAdmin):
    list_display = ["name", "language", "reference_player", "owner", "updated_at"]
    list_filter = ["language"]
    search_fields = ["name"]
    list_select_related = ["language", "owner"]
    autocomplete_fields = ["language"]
    readonly_fields = ["reference_player"]

    @admin.display(description="Reference audio")
    def reference_player(self, obj: Voice) -> str:
        if not obj.reference:
            return "-"
        return format_html('<audio controls preload="none" src="{}"></audio>', obj.reference.url)
