"""Jobs, their segments (splits), executions and the clip library over HTTP: thin views over
jobs.services. Examples for the OpenAPI document are next to each view.

One module, past 500 lines: the job viewset's actions (render, cancel, priority, exports, timeline)
share its queryset, ownership checks and throttles; segments (splits.py), publications and webhooks
have modules of their own."""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.fields import BooleanField
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import teams
from accounts.api.docs import (
    ERROR_401,
    ERROR_403,
    ERROR_404,
    detail_response,
    owned_crud_docs,
    request_example,
    response_example,
    validation_error,
)
from accounts.api.errors import errors_under
from accounts.api.ownership import ApiPagination, ApiViewMixin, OwnedModelViewSet, OwnedRowPermission
from accounts.api.parsers import CheckedJSONParser
from accounts.uploads import checked_clip
from jobs import services, storyboard
from jobs.api.examples import (
    CLIP_EXAMPLE,
    EXECUTION_EXAMPLE,
    JOB_BATCH_EXAMPLE,
    JOB_BATCH_INVALID_EXAMPLE,
    JOB_DETAIL_EXAMPLE,
    JOB_INVALID_EXAMPLE,
    JOB_LIST_EXAMPLE,
    JOB_WRITE_EXAMPLE,
    MUSIC_EXAMPLE,
    PENDING_EXAMPLE,
    RESPLIT_EXAMPLE,
)
from jobs.api.filters import ClipFilter, ExecutionFilter, JobFilter
from jobs.api.serializers import (
    ClipSerializer,
    ClipUploadSerializer,
    ExecutionDetailSerializer,
    ExecutionSerializer,
    JobBatchResultSerializer,
    JobBatchSerializer,
    JobCreateSerializer,
    JobDescriptionSerializer,
    JobDetailSerializer,
    JobExportRowSerializer,
    JobListSerializer,
    JobPrioritySerializer,
    JobWriteSerializer,
    MusicSerializer,
    ResplitSerializer,
    SplitSerializer,
)
from jobs.exports import archive
from jobs.exports import timeline as timelines
from jobs.models import ACTIVE_STATUSES, NEW, Job, JobExecution, StockClip
from voices.api.serializers import AudioUploadSerializer

EXPORT_MAX_ROWS = 1000
NOT_RENDERABLE = {"non_field_errors": ["This job is deleted; restore it before rendering."]}
TOO_MANY_TO_EXPORT = f"Export at most {EXPORT_MAX_ROWS} jobs at a time; narrow the filters."

# ---------------------------------------------------------------- export as CSV


class JobExportCSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: dict | None = None
    ) -> bytes:
        if isinstance(data, list):
            return archive.export_csv(rows=data).encode("utf-8")
        lines = data.items() if isinstance(data, dict) else []  # a dict is an error reply
        return archive.csv_text(lines=lines).encode("utf-8")


# ---------------------------------------------------------------- timeline


class FormatIsNotARenderer(DefaultContentNegotiation):
    """For the timeline, whose ?format= names the timeline's format, not a renderer: its answers are a zip or
    an error in JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        renderers = [renderer for renderer in renderers if isinstance(renderer, JSONRenderer)] or renderers
        return renderers[0], renderers[0].media_type


# ---------------------------------------------------------------- jobs


@extend_schema_view(
    list=extend_schema(
        summary="List jobs",
        tags=["jobs"],
        examples=[response_example("Job", JOB_LIST_EXAMPLE)],
        description="Your jobs (and shared ones; superusers: all), without deleted ones, with the status of "
        "their latest render. Filters: status, account, language, topic, ids, search; page and page_size "
        "(at most 200).",
    ),
    retrieve=extend_schema(
        summary="Get a job",
        tags=["jobs"],
        examples=[response_example("Job", JOB_DETAIL_EXAMPLE)],
        description="With language, voice, topic, account, the segments and the latest execution, whose "
        "results are signed links.",
        responses={200: JobDetailSerializer, 404: ERROR_404},
    ),
    create=extend_schema(
        summary="Create a job",
        tags=["jobs"],
        request=JobCreateSerializer,
        responses={201: JobDetailSerializer, 400: validation_error(JOB_INVALID_EXAMPLE), 401: ERROR_401},
        examples=[
            request_example("New job", JOB_WRITE_EXAMPLE),
            request_example("New job, rendered at once", {**JOB_WRITE_EXAMPLE, "render": True}),
            response_example(
                "Created",
                {**JOB_DETAIL_EXAMPLE, "status": NEW, "latest_execution": None, "splits": []},
                "201",
            ),
        ],
        description='With `"render": true` the render is queued in the same call and the answer shows its '
        "execution (PENDING) as latest_execution.",
    ),
    update=extend_schema(
        summary="Replace a job",
        tags=["jobs"],
        request=JobWriteSerializer,
        responses={
            200: JobDetailSerializer,
            400: validation_error(JOB_INVALID_EXAMPLE),
            403: ERROR_403,
            404: ERROR_404,
        },
        examples=[request_example("Job", JOB_WRITE_EXAMPLE), response_example("Job", JOB_DETAIL_EXAMPLE)],
    ),
    partial_update=extend_schema(
        summary="Change a job",
        tags=["jobs"],
        request=JobWriteSerializer,
        responses={
            200: JobDetailSerializer,
            400: validation_error(JOB_INVALID_EXAMPLE),
            403: ERROR_403,
            404: ERROR_404,
        },
        examples=[
            request_example("New title", {"title": "更新后的标题", "language": 2}),
            response_example("Job", JOB_DETAIL_EXAMPLE),
        ],
    ),
    destroy=extend_schema(
        summary="Delete a job",
        tags=["jobs"],
        responses={204: None, 403: ERROR_403, 404: ERROR_404},
        description="A soft delete: the job disappears from the lists; its renders and files stay until a "
        "clean-up; POST .../restore/ brings it back.",
    ),
)
class JobViewSet(ApiViewMixin, viewsets.ModelViewSet):
    """Jobs: what to render. Renders are executions; a job can be rendered many times."""

    queryset = Job.objects.all()
    permission_classes = [permissions.IsAuthenticated, OwnedRowPermission]
    pagination_class = ApiPagination
    filterset_class = JobFilter
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Job]:
        jobs = teams.visible(Job.objects.all(), self.request)
        jobs = jobs.filter(deleted_at__isnull=False) if self.action == "restore" else jobs.alive()
        if self.action == "retrieve":
            return JobDetailSerializer.detail_queryset(jobs)
        return jobs

    def filter_queryset(self, queryset: QuerySet[Job]) -> QuerySet[Job]:
        # The list's filters select jobs; a job's own URL needs none of them, nor does a list without any.
        asked = not self.request.query_params.keys().isdisjoint(JobFilter.base_filters)
        if self.action in ("list", "export") and asked:
            return super().filter_queryset(queryset)
        return queryset

    def retrieve(self, request, *args, **kwargs) -> Response:
        return Response(JobDetailSerializer(self.get_object(), context=self.get_serializer_context()).data)

    def get_serializer_class(self):
        if self.action == "list":
            return JobListSerializer
        if self.action == "create":
            return JobCreateSerializer
        if self.action in ("update", "partial_update", "batch"):
            return JobWriteSerializer
        return JobDetailSerializer

    def list(self, request, *args, **kwargs) -> Response:
        # Page over bare ids (cheap even at a deep OFFSET), then load just that page.
        jobs = self.filter_queryset(self.get_queryset())
        page_ids = list(self.paginate_queryset(jobs.values_list("pk", flat=True)))
        rows = JobListSerializer.rows(Job.objects.filter(pk__in=page_ids).order_by())
        by_id = {row["id"]: row for row in rows}
        page = [by_id[pk] for pk in page_ids if pk in by_id]
        data = JobListSerializer(page, many=True, context=self.get_serializer_context()).data
        return self.get_paginated_response(data)

    def _detail(self, job_pk: int) -> dict[str, Any]:
        job = JobDetailSerializer.detail_queryset(Job.objects.all()).get(pk=job_pk)
        return JobDetailSerializer(job, context=self.get_serializer_context()).data

    def create(self, request, *args, **kwargs) -> Response:
        serializer = JobCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        render = fields.pop("render")
        job = services.job_create(user=request.user, team=teams.creating_team(request), **fields)
        if render:
            services.job_enqueue(job=job)
        return Response(self._detail(job.pk), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Create many jobs at once",
        tags=["jobs"],
        request=JobBatchSerializer,
        responses={
            201: JobBatchResultSerializer,
            400: validation_error(JOB_BATCH_INVALID_EXAMPLE),
            401: ERROR_401,
        },
        examples=[
            request_example("Two jobs, rendered", JOB_BATCH_EXAMPLE),
            response_example("Created", {"jobs": [{**JOB_DETAIL_EXAMPLE, "splits": []}]}, "201"),
        ],
        description="All or nothing, in one transaction: each row is checked as POST /api/v1/jobs/ checks "
        "one; when any row is bad the answer is 400 with the errors under `jobs`, keyed by the row's index "
        "(from 0), every bad row and every bad field in one answer, and nothing is created. Rows are "
        "checked before the transaction opens. At most JOBS_BATCH_MAX (default 100) rows. With "
        '`"render": true` every job\'s render is queued too.',
    )
    @action(detail=False, methods=["post"])
    def batch(self, request) -> Response:
        body = request.data if isinstance(request.data, dict) else {}
        rows = body.get("jobs")
        problems: dict[str, Any] = {}
        render = False
        try:
            render = BooleanField().run_validation(body.get("render", False))
        except ValidationError as error:
            problems["render"] = error.detail
        if not isinstance(rows, list):
            raise ValidationError({**problems, "jobs": ["Send the jobs as a list of objects."]})
        try:
            services.batch_size_check(len(rows))
        except DjangoValidationError as error:
            raise ValidationError({**problems, **error.message_dict}) from error
        # Every row's types and every row's rules, so that one answer names every bad row and field.
        typed: list[dict[str, Any] | None] = []
        type_errors: dict[int, dict[str, Any]] = {}
        for index, row in enumerate(rows):
            serializer = JobWriteSerializer(data=row, context=self.get_serializer_context())
            if serializer.is_valid():
                typed.append(serializer.validated_data)
                continue
            type_errors[index] = serializer.errors
            typed.append(self._fields_of_right_type(row, serializer.errors))
        team = teams.creating_team(request)
        try:
            if problems:
                services.job_check_many(user=request.user, team=team, rows=typed, row_errors=type_errors)
            else:
                jobs = services.job_create_many(
                    user=request.user, team=team, rows=typed, render=render, row_errors=type_errors
                )
        except services.BatchRowErrors as error:
            problems["jobs"] = {str(index): fields for index, fields in error.rows.items()}
        if problems:
            raise ValidationError(problems)
        details = JobDetailSerializer.detail_queryset(Job.objects.filter(pk__in=[job.pk for job in jobs]))
        context = self.get_serializer_context()
        data = JobDetailSerializer(details.order_by("pk"), many=True, context=context).data
        return Response({"jobs": data}, status=status.HTTP_201_CREATED)

    def _fields_of_right_type(self, row: Any, errors: dict[str, Any]) -> dict[str, Any] | None:
        """A bad row's fields that have the right type, so the rules can check them too (None: the
        row is not an object at all)."""
        if not isinstance(row, dict):
            return None
        rest = JobWriteSerializer(
            data={name: value for name, value in row.items() if name not in errors},
            partial=True,
            context=self.get_serializer_context(),
        )
        return dict(rest.validated_data) if rest.is_valid() else None

    def update(self, request, *args, **kwargs) -> Response:
        job = self.get_object()
        serializer = JobWriteSerializer(
            data=request.data, partial=kwargs.get("partial", False), context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        services.job_update(job=job, user=request.user, **serializer.validated_data)
        return Response(self._detail(job.pk))

    def perform_destroy(self, instance: Job) -> None:
        services.job_soft_delete(job=instance)

    @extend_schema(
        summary="Description and signed links",
        tags=["jobs"],
        responses={200: JobDescriptionSerializer, 404: ERROR_404},
        description="What to paste into the publishing platform: the publish title, the description and "
        "signed links to the latest successful render's files.",
        examples=[
            response_example(
                "Description",
                {
                    "id": 123,
                    "title": "测试视频",
                    "publish_title": "公园散步",
                    "description": "A walk in the park.",
                    "links": {
                        "video": "https://bucket.s3.example.com/jobs/123/41/video.mp4?X-Amz-Signature=...",
                        "cover": "https://bucket.s3.example.com/jobs/123/41/cover.jpg?X-Amz-Signature=...",
                    },
                    "text": "公园散步\n\nA walk in the park.\n\nVideo: https://bucket.s3.example.com/...\n"
                    "Cover: https://bucket.s3.example.com/...",
                },
            )
        ],
    )
    @action(detail=True, methods=["get"])
    def desc(self, request, pk=None) -> Response:
        return Response(archive.job_description(job=self.get_object()))

    @extend_schema(
        summary="Export titles, descriptions and links",
        tags=["jobs"],
        parameters=[
            OpenApiParameter("format", str, enum=["json", "csv"], description="json (default) or csv")
        ],
        responses={
            (200, "application/json"): JobExportRowSerializer(many=True),
            (200, "text/csv"): OpenApiTypes.STR,
            400: validation_error({"detail": TOO_MANY_TO_EXPORT}),
        },
        description="The jobs the list's filters select (e.g. ids=1,2,3 or account=3), as JSON or as CSV "
        f"(?format=csv or Accept: text/csv), with signed links to their latest successful render. At most "
        f"{EXPORT_MAX_ROWS} jobs.",
        examples=[
            response_example(
                "Export",
                [
                    {
                        "id": 123,
                        "title": "测试视频",
                        "publish_title": "公园散步",
                        "description": "A walk in the park.",
                        "status": "SUCCESS",
                        "video_url": "/files/ImpvYnMvMTIzLzQxL3ZpZGVvLm1wNCI:1tX...",
                        "cover_url": "/files/ImpvYnMvMTIzLzQxL2NvdmVyLmpwZyI:1tX...",
                        "subtitles_url": "",
                    }
                ],
            )
        ],
    )
    @action(
        detail=False,
        methods=["get"],
        renderer_classes=[JSONRenderer, JobExportCSVRenderer],
        pagination_class=None,
    )
    def export(self, request) -> Response:
        # One row more than allowed tells that the filters select too many.
        rows = archive.export_rows(jobs=self.filter_queryset(self.get_queryset()), limit=EXPORT_MAX_ROWS + 1)
        if len(rows) > EXPORT_MAX_ROWS:
            raise ValidationError({"detail": TOO_MANY_TO_EXPORT})
        response = Response(rows)
        if getattr(request, "accepted_renderer", None) and request.accepted_renderer.format == "csv":
            response["Content-Disposition"] = 'attachment; filename="jobs.csv"'
        return response

    @extend_schema(
        summary="Editable timeline of the latest render",
        tags=["jobs"],
        parameters=[
            OpenApiParameter(
                "format",
                str,
                enum=[*timelines.FORMATS],
                description="; ".join(f"{name}: {label}" for name, label in timelines.FORMATS.items())
                + f". Default: {timelines.DEFAULT_FORMAT}.",
            )
        ],
        responses={
            (200, "application/zip"): OpenApiTypes.BINARY,
            400: validation_error(
                {
                    "format": [
                        timelines.UNKNOWN_FORMAT.format(value="avid", choices=", ".join(timelines.FORMATS))
                    ]
                }
            ),
            404: ERROR_404,
            409: detail_response("Nothing to export", timelines.NO_RENDER),
        },
        description="The latest successful render's storyboard as a timeline an editing app opens: the "
        "segments' pictures or clips at their times, the narration, the music and the subtitles (SRT), in one "
        "zip with every file it uses under relative paths. otio: OpenTimelineIO; fcpxml: Final Cut Pro X; "
        "fcp7xml: Final Cut Pro 7 XML, which Premiere Pro and DaVinci Resolve import; jianying: a Jianying "
        "(CapCut) draft folder to copy into Jianying's drafts folder. Each zip has a README.txt on opening it. "
        "409 when the job has no successful render, or a file the render used is no longer stored.",
    )
    @action(detail=True, methods=["get"], content_negotiation_class=FormatIsNotARenderer)
    def timeline(self, request, pk=None):
        job = self.get_object()
        try:
            archive, filename = timelines.job_timeline_zip(job=job, fmt=request.query_params.get("format"))
        except timelines.TimelineUnavailable as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        return FileResponse(archive, as_attachment=True, filename=filename, content_type="application/zip")

    @extend_schema(
        summary="Render before everything queued",
        tags=["jobs"],
        request=None,
        responses={200: JobPrioritySerializer, 403: ERROR_403, 404: ERROR_404},
        examples=[response_example("New place", {"id": 123, "runorder": -1})],
    )
    @action(detail=True, methods=["post"])
    def increase_priority(self, request, pk=None) -> Response:
        job = services.job_increase_priority(job=self.get_object())
        return Response({"id": job.pk, "runorder": job.runorder})

    @extend_schema(
        summary="Render the job",
        tags=["jobs"],
        request=None,
        responses={
            202: ExecutionDetailSerializer,
            400: validation_error(NOT_RENDERABLE),
            403: ERROR_403,
            404: ERROR_404,
        },
        examples=[response_example("Queued", PENDING_EXAMPLE, "202")],
        description="Queues a render and answers at once with its execution (PENDING); a worker renders it. "
        "When the job is already queued or rendering, that execution is returned instead: a job never "
        "renders twice at once. Follow it at GET /api/v1/executions/{id}/ or over the websocket.",
    )
    @action(detail=True, methods=["post"])
    def render(self, request, pk=None) -> Response:
        return self._enqueue(self.get_object())

    @extend_schema(
        summary="Render again after changes",
        tags=["jobs"],
        request=None,
        responses={
            202: ExecutionDetailSerializer,
            400: validation_error(NOT_RENDERABLE),
            403: ERROR_403,
            404: ERROR_404,
        },
        examples=[response_example("Queued", PENDING_EXAMPLE, "202")],
        description="Like render. Every step whose inputs did not change since an earlier render (same text, "
        "voice, pictures, brand...) reuses that render's stored outputs instead of running again: after "
        "swapping one picture only the composition and cover are redone, in seconds.",
    )
    @action(detail=True, methods=["post"])
    def rerender(self, request, pk=None) -> Response:
        return self._enqueue(self.get_object())

    def _enqueue(self, job: Job) -> Response:
        execution = services.job_enqueue(job=job)
        data = ExecutionDetailSerializer(execution, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Cancel the running or queued render",
        tags=["jobs"],
        request=None,
        responses={
            200: ExecutionDetailSerializer,
            403: ERROR_403,
            404: ERROR_404,
            409: detail_response("Nothing to cancel", "This job has no queued or running render."),
        },
        examples=[
            response_example(
                "Cancelled",
                {
                    **PENDING_EXAMPLE,
                    "status": "CANCELLED",
                    "detail": "Cancelled before it started",
                    "cancel_requested": True,
                },
            )
        ],
        description="A queued render is cancelled at once; a running one stops at its next progress point "
        "(its status stays RUNNING with cancel_requested true until then).",
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None) -> Response:
        job = self.get_object()
        active = job.executions.filter(status__in=ACTIVE_STATUSES).first()
        if active is None:
            return Response(
                {"detail": "This job has no queued or running render."}, status=status.HTTP_409_CONFLICT
            )
        execution = services.execution_cancel(execution=active)
        return Response(ExecutionDetailSerializer(execution, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Restore a deleted job",
        tags=["jobs"],
        request=None,
        responses={200: JobDetailSerializer, 403: ERROR_403, 404: ERROR_404},
        examples=[response_example("Restored", JOB_DETAIL_EXAMPLE)],
    )
    @action(detail=True, methods=["post"])
    def restore(self, request, pk=None) -> Response:
        job = services.job_restore(job=self.get_object())
        return Response(self._detail(job.pk))

    @extend_schema(
        summary="Group the segments again from scratch",
        tags=["jobs", "splits"],
        request=None,
        responses={
            200: ResplitSerializer,
            400: validation_error(
                {
                    "non_field_errors": [
                        "This job has no storyboard yet: render it, and the render splits it into segments."
                    ]
                }
            ),
            403: ERROR_403,
            404: ERROR_404,
        },
        examples=[response_example("Re-split", RESPLIT_EXAMPLE)],
        description="Renders keep the storyboard: each segment keeps its sentences, prompt, pictures and "
        "clip and only its times move. This groups the sentences of the last rendered narration into "
        "segments of about the target length again. A segment whose exact run of sentences survives keeps "
        "its row and choices (`kept`); the others go with their prompts, selections and clips (`dropped`; "
        "their uploads stay in storage until the clean-up) and the new ones get pictures at the next render.",
    )
    @action(detail=True, methods=["post"])
    def resplit(self, request, pk=None) -> Response:
        job = self.get_object()
        plan = storyboard.storyboard_resplit(job=job)
        splits = SplitSerializer(
            job.splits.select_related("clip").order_by("index"),
            many=True,
            context=self.get_serializer_context(),
        ).data
        return Response({"kept": plan.kept, "dropped": plan.dropped, "splits": splits})


# ---------------------------------------------------------------- executions


@extend_schema_view(
    list=extend_schema(
        summary="List renders",
        tags=["executions"],
        examples=[
            response_example(
                "Execution",
                {
                    key: value
                    for key, value in EXECUTION_EXAMPLE.items()
                    if key in ExecutionSerializer.Meta.fields
                },
            )
        ],
        description="Renders of your jobs, newest first; filter by status (repeatable) and job.",
    ),
    retrieve=extend_schema(
        summary="Get a render",
        tags=["executions"],
        responses={200: ExecutionDetailSerializer, 404: ERROR_404},
        examples=[response_example("Execution", EXECUTION_EXAMPLE)],
        description="With its step records and signed links to its results.",
    ),
)
class ExecutionViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    """Renders (executions) of the jobs you can see."""

    permission_classes = [permissions.IsAuthenticated]
    pagination_class = ApiPagination
    filterset_class = ExecutionFilter
    queryset = JobExecution.objects.all()

    def get_queryset(self) -> QuerySet[JobExecution]:
        jobs = teams.visible(Job.objects.alive(), self.request)
        return JobExecution.objects.filter(job__in=jobs.values("pk")).order_by("-created_at", "-id")

    def get_serializer_class(self):
        return ExecutionSerializer if self.action == "list" else ExecutionDetailSerializer


# ---------------------------------------------------------------- clip library


@owned_crud_docs(
    noun="clip",
    plural="clips",
    serializer=ClipSerializer,
    tag="clips",
    example=CLIP_EXAMPLE,
    write_example={
        "title": "Sea at dawn",
        "tags": "landscape,sea",
        "source": "own footage",
        "licence": "CC0",
    },
    invalid_example={"title": ["Ensure this field has no more than 255 characters."]},
    documented_elsewhere=("create",),
)
class ClipViewSet(OwnedModelViewSet):
    """The library of real clips some segments show instead of a picture."""

    queryset = StockClip.objects.all()
    serializer_class = ClipSerializer
    filterset_class = ClipFilter
    parser_classes = [CheckedJSONParser, MultiPartParser, FormParser]

    @extend_schema(
        summary="Upload a clip",
        tags=["clips"],
        request={"multipart/form-data": ClipUploadSerializer},
        responses={
            201: ClipSerializer,
            400: validation_error({"file": ["Clips must be MP4, MOV, WebM or Matroska video."]}),
            401: ERROR_401,
        },
        examples=[response_example("Created clip", CLIP_EXAMPLE, "201")],
        description="A video file checked with ffprobe and stored under a generated name; its duration and "
        "size are read from the file. It belongs to you.",
    )
    def create(self, request, *args, **kwargs) -> Response:
        upload = ClipUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        data = upload.validated_data
        team = teams.creating_team(request)
        with errors_under("file", media_errors=True), checked_clip(data["file"]) as checked:
            clip = services.clip_import(
                path=checked.path,
                owner=request.user,
                team=team,
                tags=data.get("tags", ""),
                source=data.get("source", ""),
                licence=data.get("licence", ""),
            )
        if data.get("title"):
            clip.title = data["title"]
            clip.save(update_fields=["title", "updated_at"])
        return Response(
            ClipSerializer(clip, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED
        )


# ---------------------------------------------------------------- background music


class MusicView(ApiViewMixin, APIView):
    """Your background music: upload a file, then set its key as a job's `extra.music`."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        summary="List your music",
        tags=["music"],
        responses={200: MusicSerializer(many=True), 401: ERROR_401},
        examples=[response_example("Music", [MUSIC_EXAMPLE])],
    )
    def get(self, request) -> Response:
        return Response(services.music_list(team=teams.current_team(request)))

    @extend_schema(
        summary="Upload music",
        tags=["music"],
        request={"multipart/form-data": AudioUploadSerializer},
        responses={
            201: MusicSerializer,
            400: validation_error(
                {"file": ["Audio must be WAV, MP3, M4A, Ogg or FLAC with an audio stream."]}
            ),
            401: ERROR_401,
        },
        examples=[response_example("Stored", MUSIC_EXAMPLE, "201")],
        description="WAV, MP3, M4A, Ogg or FLAC of at most 20 MB, checked with ffprobe and stored under a "
        "generated name in your music folder. Send the returned key as a job's `extra.music`.",
    )
    def post(self, request) -> Response:
        upload = AudioUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        music = services.music_save(team=teams.creating_team(request), audio=upload.validated_data["file"])
        return Response(music, status=status.HTTP_201_CREATED)
