from django.urls import path

from jobs.live.consumers import JobProgressConsumer

websocket_urlpatterns = [
    path("ws/jobs/", JobProgressConsumer.as_asgi()),
    path("ws/jobs/<int:job_id>/", JobProgressConsumer.as_asgi()),
]
