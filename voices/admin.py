from django.contrib import admin

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
    list_display = ["name", "language", "reference", "owner", "updated_at"]
    list_filter = ["language"]
    search_fields = ["name"]
    list_select_related = ["language", "owner"]
