from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render
from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import teams
from accounts.api.ownership import ApiViewMixin
from jobs.models import Job
from jobs.render import progress
from jobs.render.steps import STEPS


@login_required
def job_progress(request, job_id: int):
    """The live progress page: a bar per step, the message, the ETA, an event log, the video."""
    job = get_object_or_404(teams.visible(Job.objects.alive(), request), pk=job_id)
    return render(
        request,
        "jobs/progress.html",
        {
            "job": job,
            "snapshot": progress.job_snapshot(job),
            "steps": list(STEPS),
        },
    )


@login_required
def job_progress_json(request, job_id: int) -> JsonResponse:
    """What the progress page polls when its websocket cannot connect."""
    job = get_object_or_404(teams.visible(Job.objects.alive(), request), pk=job_id)
    return JsonResponse(progress.job_snapshot(job))


@extend_schema_view(
    post=extend_schema(
        request=None,
        responses=inline_serializer(
            "WebsocketTicket", {"ticket": serializers.CharField(), "expires_in": serializers.IntegerField()}
        ),
    )
)
class WebsocketTicketView(ApiViewMixin, APIView):
    """POST: a ticket for one `wss://.../ws/jobs/<id>/?ticket=...` socket, opened within one minute;
    one asked for with an API token dies with that token."""

    def post(self, request) -> Response:
        token = request.auth if isinstance(request.auth, Token) else None
        return Response(
            {
                "ticket": progress.ws_ticket_issue(user=request.user, token=token),
                "expires_in": progress.WS_TICKET_MAX_AGE_S,
            }
        )
