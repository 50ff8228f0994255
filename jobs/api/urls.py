from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from jobs.api import publications, splits, views, webhooks

router = SimpleRouter()
router.register("jobs", views.JobViewSet, basename="job")
router.register(r"jobs/(?P<job_pk>[0-9]+)/splits", splits.JobSplitViewSet, basename="job-split")
router.register("executions", views.ExecutionViewSet, basename="execution")
router.register("clips", views.ClipViewSet, basename="clip")
router.register("publications", publications.PublicationViewSet, basename="publication")
router.register("webhooks", webhooks.WebhookViewSet, basename="webhook")
router.register("webhook-deliveries", webhooks.WebhookDeliveryViewSet, basename="webhook-delivery")

urlpatterns = [
    path("music/", views.MusicView.as_view(), name="music"),
    re_path(r"^jobs/(?P<id>[^/.]+)/publish/$", publications.JobPublishView.as_view(), name="job-publish"),
    path("teams/<slug:slug>/quota/", publications.TeamQuotaView.as_view(), name="team-quota"),
]
