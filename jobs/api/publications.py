"""Publishing over HTTP: POST /api/v1/jobs/{id}/publish/ and the publications of your jobs (jobs.publishing.publications).
A channel's credentials never appear here; nor does an upload session's address."""

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import teams
from accounts.api.docs import (
    ERROR_401,
    ERROR_403,
    ERROR_404,
    request_example,
    response_example,
    validation_error,
)
from accounts.api.ownership import ApiPagination, ApiViewMixin, OwnedRowPermission
from jobs.api.filters import IdFilter
from jobs.models import Job, Privacy, Publication, PublicationStatus
from jobs.publishing import publications, quota

PUBLICATION_EXAMPLE = {
    "id": 7,
    "job": 123,
    "execution": 41,
    "account": 3,
    "status": "WAITING",
    "forced": False,
    "title": "公园散步",
    "description": "A walk in the park.",
    "tags": ["walk", "park"],
    "category_id": "22",
    "language": "zh-CN",
    "privacy": "private",
    "publish_at": None,
    "video_id": "",
    "url": "",
    "uploaded_bytes": 0,
    "thumbnail_done": False,
    "captions_done": False,
    "attempts": 0,
    "scheduled_for": "2026-12-02T08:00:00Z",
    "detail": "Scheduled for the next YouTube quota day (2026-12-02 00:00 PST, 08:00 UTC): needs 2050 units of "
    "YouTube quota, 1200 of 10000 are left today",
    "error": "",
    "created_at": "2026-12-01T17:00:00Z",
    "updated_at": "2026-12-01T17:00:01Z",
    "published_at": None,
}
NOT_PUBLISHABLE = {
    "non_field_errors": [
        "Render 41 of this job is already published or being published (publication 7, PUBLISHED); publish again "
        "with force to upload another copy."
    ]
}


class PublicationFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(
        choices=PublicationStatus.choices, help_text="One or more statuses (repeat the parameter)."
    )
    job = IdFilter(field_name="job_id", help_text="Job id.")

    class Meta:
        model = Publication
        fields: list[str] = []


class PublishSerializer(serializers.Serializer):
    privacy = serializers.ChoiceField(
        choices=Privacy.choices,
        required=False,
        allow_blank=True,
        help_text="Empty: the default (private when publish_at is set).",
    )
    publish_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="YouTube makes the (private until then) video public then."
    )
    tags = serializers.ListField(child=serializers.CharField(max_length=500), required=False, max_length=100)
    category_id = serializers.CharField(
        required=False, allow_blank=True, max_length=8, help_text="A YouTube category id; empty: the default."
    )
    force = serializers.BooleanField(
        required=False, default=False, help_text="Upload another copy of a render that was published already."
    )

    def options(self) -> publications.PublishOptions:
        data = self.validated_data
        return publications.PublishOptions(
            privacy=data.get("privacy", ""),
            publish_at=data.get("publish_at"),
            tags=data.get("tags", []),
            category_id=data.get("category_id", ""),
            force=data["force"],
        )


class PublicationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Publication
        fields = [
            "id",
            "job",
            "execution",
            "account",
            "status",
            "forced",
            "title",
            "description",
            "tags",
            "category_id",
            "language",
            "privacy",
            "publish_at",
            "video_id",
            "url",
            "uploaded_bytes",
            "thumbnail_done",
            "captions_done",
            "attempts",
            "scheduled_for",
            "detail",
            "error",
            "created_at",
            "updated_at",
            "published_at",
        ]
        read_only_fields = fields


class JobPublishView(ApiViewMixin, APIView):
    permission_classes = [permissions.IsAuthenticated, OwnedRowPermission]

    @extend_schema(
        summary="Publish the latest successful render to YouTube",
        tags=["jobs", "publications"],
        request=PublishSerializer,
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH, description="Job id.")],
        responses={
            202: PublicationSerializer,
            400: validation_error(NOT_PUBLISHABLE),
            401: ERROR_401,
            403: ERROR_403,
            404: ERROR_404,
        },
        examples=[
            request_example(
                "Scheduled",
                {
                    "privacy": "private",
                    "publish_at": "2026-12-24T09:00:00Z",
                    "tags": ["walk", "park"],
                    "category_id": "22",
                },
            ),
            response_example("Queued", PUBLICATION_EXAMPLE, "202"),
        ],
        description="Queues the upload of the job's latest successful render to its account's connected YouTube "
        "channel: title (publish_title, else the title), description, tags, category, the job's language, privacy "
        "or a scheduled publish_at, the cover as thumbnail and the subtitles as a caption track. Workers publish "
        "as the project's daily quota allows; what does not fit waits for the next quota day (midnight Pacific). "
        "A render is published once: again only with force. A failed publication is retried.",
    )
    def post(self, request, id: str) -> Response:  # noqa: A002 (the path's name, as the router's job URLs have it)
        job = get_object_or_404(
            teams.visible(Job.objects.alive(), request).select_related("account", "language"), pk=id
        )
        self.check_object_permissions(
            request, job
        )  # as for a render: a shared job is a superuser's to publish
        serializer = PublishSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        publication = publications.publication_request(
            job=job, user=request.user, options=serializer.options()
        )
        return Response(PublicationSerializer(publication).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(
        summary="List publications",
        tags=["publications"],
        examples=[response_example("Publication", PUBLICATION_EXAMPLE)],
        description="Publications of your jobs, newest first; ?job= narrows to one job.",
    ),
    retrieve=extend_schema(
        summary="Get a publication",
        tags=["publications"],
        responses={200: PublicationSerializer, 404: ERROR_404},
        examples=[response_example("Publication", PUBLICATION_EXAMPLE)],
    ),
)
class PublicationViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    """Publications of the jobs you can see: status, video id and URL, attempts, schedule, error."""

    permission_classes = [permissions.IsAuthenticated]
    pagination_class = ApiPagination
    serializer_class = PublicationSerializer
    queryset = Publication.objects.all()
    filterset_class = PublicationFilter

    def get_queryset(self) -> QuerySet[Publication]:
        jobs = teams.visible(Job.objects.all(), self.request)
        return Publication.objects.filter(job__in=jobs.values("pk")).order_by("-created_at", "-id")


class TeamQuotaSerializer(serializers.Serializer):
    team = serializers.SlugField()
    day = serializers.DateField(help_text="The YouTube quota day (Pacific time).")
    budget = serializers.IntegerField(
        help_text="The units the team may spend a day (YOUTUBE_TEAM_QUOTA_SHARE)."
    )
    used = serializers.IntegerField(help_text="The units the team spent (or reserved) today.")
    left = serializers.IntegerField(
        help_text="What the team may still spend today (no more than the project has)."
    )


class TeamQuotaView(ApiViewMixin, APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        summary="A team's YouTube quota today",
        tags=["teams", "publications"],
        responses={200: TeamQuotaSerializer, 401: ERROR_401, 404: ERROR_404},
        examples=[
            response_example(
                "Quota", {"team": "health", "day": "2026-12-01", "budget": 5000, "used": 2050, "left": 2950}
            )
        ],
        description="Each team may spend its share of the Google project's daily units; a publication that does "
        "not fit the team's part waits for the next quota day, and other teams' parts are left alone.",
    )
    def get(self, request, slug: str) -> Response:
        try:
            team = teams.team_named(request.user, slug)
        except teams.NotAMember as error:
            raise NotFound(str(error)) from error
        today = quota.team_quota(team=team)
        return Response(
            {
                "team": team.slug,
                "day": today.day,
                "budget": today.budget,
                "used": today.used,
                "left": today.left,
            }
        )
