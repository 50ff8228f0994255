"""A job's storyboard over HTTP: its segments (splits), editing one, adding a picture, splitting,
merging and re-splitting. Thin views over jobs.storyboard."""

from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404  # a job id no number fits is a 404 too
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from accounts import teams
from accounts.api.docs import ERROR_403, ERROR_404, request_example, response_example, validation_error
from accounts.api.errors import errors_under
from accounts.api.ownership import ApiViewMixin, OwnedRowPermission
from accounts.uploads import check_image
from jobs import storyboard
from jobs.api.examples import SPLIT_EXAMPLE, STORYBOARD_EXAMPLE
from jobs.api.serializers import (
    SplitDivideSerializer,
    SplitImageUploadSerializer,
    SplitPreviewSerializer,
    SplitSerializer,
    SplitUpdateSerializer,
)
from jobs.models import Job, JobSplit
from jobs.render import previews

JOB_PK = OpenApiParameter(
    "job_pk", {"type": "integer", "minimum": 1}, OpenApiParameter.PATH, description="The job's id."
)
INDEX = OpenApiParameter(
    "index", {"type": "integer", "minimum": 0}, OpenApiParameter.PATH, description="The segment's index."
)


@extend_schema_view(
    list=extend_schema(
        summary="List a job's segments",
        tags=["splits"],
        parameters=[JOB_PK],
        responses={200: SplitSerializer(many=True), 404: ERROR_404},
        examples=[response_example("Segments", [SPLIT_EXAMPLE])],
        description="All segments in order (not paged: a job has at most a few hundred).",
    ),
    retrieve=extend_schema(
        summary="Get a segment",
        tags=["splits"],
        parameters=[JOB_PK, INDEX],
        responses={200: SplitSerializer, 404: ERROR_404},
        examples=[response_example("Segment", SPLIT_EXAMPLE)],
    ),
)
class JobSplitViewSet(
    ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The storyboard: one segment per picture or clip. Edits apply at the next (re)render."""

    permission_classes = [permissions.IsAuthenticated, OwnedRowPermission]
    serializer_class = SplitSerializer
    lookup_field = "index"
    lookup_value_regex = "[0-9]+"
    pagination_class = None
    filter_backends: list = []
    queryset = JobSplit.objects.all()

    def get_job(self) -> Job:
        if not hasattr(self, "_job"):
            jobs = teams.visible(Job.objects.alive(), self.request)
            self._job = get_object_or_404(jobs, pk=self.kwargs["job_pk"])
        return self._job

    def get_queryset(self) -> QuerySet[JobSplit]:
        if getattr(self, "swagger_fake_view", False):
            return JobSplit.objects.none()
        return JobSplit.objects.filter(job=self.get_job()).select_related("clip").order_by("index")

    def check_object_permissions(self, request, obj) -> None:
        # A segment belongs to its job: the job's owner decides.
        super().check_object_permissions(request, self.get_job())

    @extend_schema(
        summary="Edit a segment",
        tags=["splits"],
        parameters=[JOB_PK, INDEX],
        request=SplitUpdateSerializer,
        responses={
            200: SplitSerializer,
            400: validation_error({"selected": ["jobs/1/x.png is not one of this segment's pictures."]}),
            403: ERROR_403,
            404: ERROR_404,
        },
        examples=[
            request_example(
                "Fix the text and pick a picture",
                {"text": "今天天气真好。", "selected": "jobs/123/pictures/000-card-1a2b.png"},
            ),
            response_example("Segment", SPLIT_EXAMPLE),
        ],
        description="text (the job's script changes with it, so the next render re-narrates just this "
        "sentence; a prompt never edited follows it), prompt (then kept through text edits), selected (one of `images`' keys; clears the clip) and clip (a library clip id, "
        "null for the picture again).",
    )
    def partial_update(self, request, *args, **kwargs) -> Response:
        split_row = self.get_object()
        split_row.job = self.get_job()
        serializer = SplitUpdateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with transaction.atomic():
            if "text" in data or "prompt" in data:
                with errors_under("text"):
                    storyboard.split_update(
                        split_row=split_row, text=data.get("text"), prompt=data.get("prompt")
                    )
            if "selected" in data:
                with errors_under("selected"):
                    storyboard.split_choose_image(split_row=split_row, key=data["selected"])
            if "clip" in data:
                with errors_under("clip"):
                    storyboard.split_use_clip(split_row=split_row, clip=data["clip"], user=request.user)
        split_row = self.get_queryset().get(pk=split_row.pk)
        return Response(SplitSerializer(split_row, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Add a picture to a segment",
        tags=["splits"],
        parameters=[JOB_PK, INDEX],
        request={"multipart/form-data": SplitImageUploadSerializer},
        responses={
            201: SplitSerializer,
            400: validation_error({"file": ["The upload is not a readable PNG, JPEG or WebP picture."]}),
            403: ERROR_403,
            404: ERROR_404,
        },
        examples=[response_example("Segment with the new picture", SPLIT_EXAMPLE, "201")],
        description="A PNG, JPEG or WebP of at most 5 MB becomes one of the segment's candidate pictures "
        "(and, unless select=false, the one shown).",
    )
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser])
    def images(self, request, *args, **kwargs) -> Response:
        split_row = self.get_object()
        split_row.job = self.get_job()
        upload = SplitImageUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        with errors_under("file"):
            picture = check_image(upload.validated_data["file"])
            storyboard.split_add_image(
                split_row=split_row, uploaded=picture, select=upload.validated_data["select"]
            )
        split_row = self.get_queryset().get(pk=split_row.pk)
        return Response(
            SplitSerializer(split_row, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        summary="Preview a segment",
        tags=["splits"],
        parameters=[JOB_PK, INDEX],
        request=None,
        responses={
            200: SplitPreviewSerializer,
            400: validation_error(
                {
                    "non_field_errors": [
                        "This job has no rendered narration yet: render it once to preview its segments."
                    ]
                }
            ),
            403: ERROR_403,
            404: ERROR_404,
        },
        examples=[
            response_example("The preview", {"url": "https://storage.example/jobs/123/previews/9-ab12.mp4"})
        ],
        description="A short MP4 of the segment as the storyboard has it now (picture or clip, motion, "
        "transitions), with its narration and subtitles from the newest render: made from the render's own "
        "video chunks, so it takes seconds, and the next render reuses what it made.",
    )
    @action(detail=True, methods=["post"])
    def preview(self, request, *args, **kwargs) -> Response:
        split_row = self.get_object()
        split_row.job = self.get_job()
        key = previews.split_preview(split_row=split_row)
        return Response(SplitPreviewSerializer({"url": default_storage.url(key)}).data)

    @extend_schema(
        summary="Split a segment between two of its sentences",
        tags=["splits"],
        parameters=[JOB_PK, INDEX],
        request=SplitDivideSerializer,
        responses={
            200: SplitSerializer(many=True),
            400: validation_error(
                {"at": ["Segment 1 has 2 sentences: split it after sentence 1 to 1, not after sentence 3."]}
            ),
            403: ERROR_403,
            404: ERROR_404,
        },
        examples=[
            request_example("After its first sentence", {"at": 1}),
            response_example("The storyboard", STORYBOARD_EXAMPLE),
        ],
        description="The segment ends after its sentence `at` (1-based; see `sentences`) and a new segment "
        "follows with the rest; later segments' indexes grow by one. The first part keeps the pictures "
        "(its generated card too), selection, clip and an edited prompt. The new part gets a copy of the "
        "candidate pictures to choose from (not the card), nothing selected (the next render gives it its "
        "own picture) and a prompt from the topic's template; a prompt never edited follows its part's text. "
        "Answers with the whole storyboard.",
    )
    @action(detail=True, methods=["post"])
    def split(self, request, *args, **kwargs) -> Response:
        split_row = self.get_object()
        split_row.job = self.get_job()
        serializer = SplitDivideSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        storyboard.split_divide(split_row=split_row, at=serializer.validated_data["at"])
        return Response(self._storyboard())

    @extend_schema(
        summary="Merge a segment with the next one",
        tags=["splits"],
        parameters=[JOB_PK, INDEX],
        request=None,
        responses={
            200: SplitSerializer(many=True),
            400: validation_error(
                {
                    "non_field_errors": [
                        "Segment 2 is the last one: there is no next segment to merge it with."
                    ]
                }
            ),
            403: ERROR_403,
            404: ERROR_404,
        },
        examples=[response_example("The storyboard", STORYBOARD_EXAMPLE[:1])],
        description="One segment with the sentences of both; later segments' indexes shrink by one. It keeps "
        "this segment's edited prompt, selection and clip (the next one's when this one showed only a "
        "generated card and the next one a picture or clip of the operator's) and both segments' pictures "
        "as candidates (not the next one's card). Answers with the whole storyboard.",
    )
    @action(detail=True, methods=["post"])
    def merge(self, request, *args, **kwargs) -> Response:
        split_row = self.get_object()
        split_row.job = self.get_job()
        storyboard.split_merge_next(split_row=split_row)
        return Response(self._storyboard())

    def _storyboard(self) -> list[dict[str, Any]]:
        return SplitSerializer(self.get_queryset(), many=True, context=self.get_serializer_context()).data
