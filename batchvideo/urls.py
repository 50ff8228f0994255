from django.conf import settings
from django.contrib import admin
from django.urls import path
from django.views.static import serve

admin.site.site_header = "BatchVideo"
admin.site.site_title = "BatchVideo"
admin.site.index_title = "Storyboards, renders and presets"

urlpatterns = [
    path("admin/", admin.site.urls),
]

if not settings.STORAGES["default"]["BACKEND"].endswith("S3Storage"):
    # Local media (the embedded default) is served by Django itself, behind the admin login.
    from django.contrib.admin.views.decorators import staff_member_required

    urlpatterns += [
        path("media/<path:path>", staff_member_required(serve), {"document_root": settings.MEDIA_ROOT}),
    ]
