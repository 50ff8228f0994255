from django.contrib import admin

from accounts.admin import OwnedAdmin

from .models import Topic


@admin.register(Topic)
class TopicAdmin(OwnedAdmin):
    list_display = ["name", "lora_name", "lora_weight", "real_clip_ratio", "owner", "updated_at"]
    list_filter = ["lora_name"]
    search_fields = ["name", "prompt_gen_image"]
    list_select_related = ["owner"]
