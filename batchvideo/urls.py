from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts.views import signed_media, team_switch
from batchvideo import health
from jobs import views

admin.site.site_header = "BatchVideo"
admin.site.site_title = "BatchVideo"
admin.site.index_title = "Storyboards, renders and presets"

urlpatterns = [
    path("admin/switch-team/", team_switch, name="team-switch"),
    path("admin/", admin.site.urls),
    path("files/<str:token>", signed_media, name="signed-media"),
    path("jobs/<int:job_id>/progress", views.job_progress, name="job-progress"),
    path("jobs/<int:job_id>/progress.json", views.job_progress_json, name="job-progress-json"),
    path("api/v1/ws-ticket/", views.WebsocketTicketView.as_view(), name="ws-ticket"),
    path("accounts/login/", auth_views.LoginView.as_view(template_name="admin/login.html"), name="login"),
    path("api/v1/", include("batchvideo.api_urls")),
    path("health", health.health, name="health"),
    path("health/extended", health.health_extended, name="health-extended"),
    path("ready", health.ready, name="ready"),
    path("metrics", health.metrics, name="metrics"),
]
