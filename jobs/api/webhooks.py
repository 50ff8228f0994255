"""Webhooks over HTTP: your URLs that get signed events, and the log of what was sent to them.
Thin views over jobs.webhooks; every row is its owner's alone (superusers too see only their own here)."""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiWebhook, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts import teams
from accounts.api.docs import (
    ERROR_401,
    ERROR_404,
    request_example,
    response_example,
    validation_error,
)
from accounts.api.ownership import ApiPagination, ApiViewMixin
from jobs.api.examples import (
    WEBHOOK_CREATED_EXAMPLE,
    WEBHOOK_DELIVERY_EXAMPLE,
    WEBHOOK_EVENT_EXAMPLE,
    WEBHOOK_EXAMPLE,
)
from jobs.models import EventKind, Webhook, WebhookAttempt, WebhookDelivery
from jobs.webhooks import subscriptions
from jobs.webhooks.delivery import delivery_resend

SIGNING = (
    "Each event is POSTed as JSON (see WebhookEvent) with the headers `X-BatchVideo-Event` (its kind), "
    "`X-BatchVideo-Event-Id` (the same on every retry: ignore ids you have seen) and "
    '`X-BatchVideo-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with the '
    "secret>`. Verify the signature over the raw body and refuse timestamps older than a few minutes. "
    "Answer 2xx; anything else is retried with back-off (30 s, doubling, 8 tries by default). URLs must "
    "resolve to public addresses."
)
INVALID_WEBHOOK = {
    "url": [
        "Webhook URL host 10.0.0.5 is a private address: only public addresses are "
        "allowed (an operator may allow networks with WEBHOOK_ALLOWED_NETWORKS)."
    ]
}


class WebhookSerializer(serializers.ModelSerializer):
    """Types only: the rules (public addresses, known events) are jobs.webhooks'."""

    url = serializers.CharField(max_length=2000, help_text="http(s) URL resolving to public addresses only.")
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EventKind.choices),
        required=False,
        help_text="Event kinds to send; empty or left out: all of them.",
    )
    secret_hint = serializers.SerializerMethodField(
        help_text="The secret's first characters, to tell it apart."
    )

    class Meta:
        model = Webhook
        fields = [
            "id",
            "url",
            "description",
            "events",
            "is_active",
            "secret_hint",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "secret_hint", "created_at", "updated_at"]

    def get_secret_hint(self, webhook: Webhook) -> str:
        return subscriptions.secret_hint(webhook.secret)


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(read_only=True, help_text="Signs every event. Shown only in this answer.")

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]


class WebhookSecretSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="The new secret, shown only in this answer.")


class WebhookEventExecutionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    detail = serializers.CharField()
    error = serializers.CharField()
    error_kind = serializers.CharField()
    attempt = serializers.IntegerField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    results = serializers.ListField(
        child=serializers.CharField(), help_text="Result names; signed links at GET /api/v1/executions/{id}/."
    )


class WebhookEventJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()


class WebhookEventPublicationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    execution_id = serializers.IntegerField()
    status = serializers.CharField()
    video_id = serializers.CharField()
    url = serializers.CharField()
    privacy = serializers.CharField()
    publish_at = serializers.DateTimeField(allow_null=True)
    attempts = serializers.IntegerField()
    error = serializers.CharField()


class WebhookEventDataSerializer(serializers.Serializer):
    job = WebhookEventJobSerializer()
    execution = WebhookEventExecutionSerializer(required=False, help_text="render.* events.")
    publication = WebhookEventPublicationSerializer(required=False, help_text="publish.* events.")


class WebhookEventSerializer(serializers.Serializer):
    """The JSON body of every webhook POST."""

    id = serializers.UUIDField(help_text="The event id: the same on every retry and resend.")
    type = serializers.ChoiceField(choices=EventKind.choices)
    created_at = serializers.DateTimeField()
    data = WebhookEventDataSerializer()


def _event_webhook(kind: EventKind) -> OpenApiWebhook:
    return OpenApiWebhook(
        name=kind.value,
        decorator=extend_schema(
            summary=f"{kind.label} (sent to your webhooks)",
            description=SIGNING,
            request=WebhookEventSerializer,
            examples=[request_example(kind.label, {**WEBHOOK_EVENT_EXAMPLE, "type": kind.value})],
            responses={200: None},
        ),
    )


# The POST a receiver gets, in the schema's `x-webhooks` (OpenAPI 3.0 has no `webhooks` yet: see
# webhooks_as_extension); settings.SPECTACULAR_SETTINGS["WEBHOOKS"] names these.
RENDER_DONE_WEBHOOK = _event_webhook(EventKind.RENDER_DONE)
RENDER_FAILED_WEBHOOK = _event_webhook(EventKind.RENDER_FAILED)
PUBLISH_DONE_WEBHOOK = _event_webhook(EventKind.PUBLISH_DONE)
PUBLISH_FAILED_WEBHOOK = _event_webhook(EventKind.PUBLISH_FAILED)


def webhooks_as_extension(result: dict, **kwargs: Any) -> dict:
    """drf-spectacular postprocessing hook: an OpenAPI 3.0 document may not hold `webhooks` (3.1);
    `x-webhooks` says the same where 3.0 tools (Redoc among them) look for it."""
    if "webhooks" in result and str(result.get("openapi", "")).startswith("3.0"):
        result["x-webhooks"] = result.pop("webhooks")
    return result


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["status_code", "error", "duration_ms", "created_at"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    payload = WebhookEventSerializer(help_text="The JSON body sent.")
    attempt_log = WebhookAttemptSerializer(many=True, help_text="Every try, newest first.")

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "webhook",
            "event_id",
            "kind",
            "payload",
            "status",
            "attempts",
            "next_attempt_at",
            "delivered_at",
            "created_at",
            "attempt_log",
        ]


def _owned_by(request, model) -> QuerySet:
    """The current team's webhooks (or their deliveries): a webhook is never a shared preset."""
    team = teams.current_team(request)
    if model is Webhook:
        return Webhook.objects.of_team(team)
    return model.objects.filter(webhook__in=Webhook.objects.of_team(team))


@extend_schema_view(
    list=extend_schema(
        summary="List your webhooks",
        tags=["webhooks"],
        description=SIGNING,
        examples=[response_example("Webhook", WEBHOOK_EXAMPLE)],
    ),
    retrieve=extend_schema(
        summary="Get a webhook",
        tags=["webhooks"],
        responses={200: WebhookSerializer, 404: ERROR_404},
        examples=[response_example("Webhook", WEBHOOK_EXAMPLE)],
    ),
    create=extend_schema(
        summary="Register a webhook",
        tags=["webhooks"],
        request=WebhookSerializer,
        responses={201: WebhookCreatedSerializer, 400: validation_error(INVALID_WEBHOOK), 401: ERROR_401},
        examples=[
            request_example("A webhook", {key: WEBHOOK_EXAMPLE[key] for key in ("url", "events")}),
            response_example("Created, with its secret", WEBHOOK_CREATED_EXAMPLE, "201"),
        ],
        description="The answer holds the secret that signs every event; it is never shown again (rotate it "
        "with POST .../rotate_secret/). " + SIGNING,
    ),
    update=extend_schema(
        summary="Replace a webhook",
        tags=["webhooks"],
        responses={200: WebhookSerializer, 400: validation_error(INVALID_WEBHOOK), 404: ERROR_404},
        examples=[
            request_example("A webhook", {"url": WEBHOOK_EXAMPLE["url"]}),
            response_example("Webhook", WEBHOOK_EXAMPLE),
        ],
    ),
    partial_update=extend_schema(
        summary="Change a webhook",
        tags=["webhooks"],
        responses={200: WebhookSerializer, 400: validation_error(INVALID_WEBHOOK), 404: ERROR_404},
        examples=[
            request_example("Pause it", {"is_active": False}),
            response_example("Webhook", WEBHOOK_EXAMPLE),
        ],
    ),
    destroy=extend_schema(
        summary="Delete a webhook", tags=["webhooks"], responses={204: None, 404: ERROR_404}
    ),
)
class WebhookViewSet(ApiViewMixin, viewsets.ModelViewSet):
    """Your webhooks: URLs that get a signed POST when a render is done or failed."""

    permission_classes = [permissions.IsAuthenticated]
    pagination_class = ApiPagination
    serializer_class = WebhookSerializer
    queryset = Webhook.objects.all()
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Webhook]:
        return _owned_by(self.request, Webhook).order_by("-created_at", "-id")

    def create(self, request, *args, **kwargs) -> Response:
        serializer = WebhookSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        webhook = subscriptions.webhook_create(
            user=request.user, team=teams.creating_team(request), **serializer.validated_data
        )
        return Response(WebhookCreatedSerializer(webhook).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs) -> Response:
        webhook = self.get_object()
        serializer = WebhookSerializer(webhook, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        subscriptions.webhook_update(webhook=webhook, **serializer.validated_data)
        return Response(WebhookSerializer(webhook).data)

    @extend_schema(
        summary="Give a webhook a new secret",
        tags=["webhooks"],
        request=None,
        responses={200: WebhookSecretSerializer, 404: ERROR_404},
        examples=[response_example("New secret", {"secret": WEBHOOK_CREATED_EXAMPLE["secret"]})],
        description="The old secret stops verifying at once; the new one is shown only here.",
    )
    @action(detail=True, methods=["post"])
    def rotate_secret(self, request, pk=None) -> Response:
        return Response({"secret": subscriptions.webhook_rotate_secret(webhook=self.get_object())})


WEBHOOK_FILTER = OpenApiParameter(
    "webhook",
    {"type": "integer", "minimum": 1},
    OpenApiParameter.QUERY,
    description="Only this webhook's deliveries.",
)


@extend_schema_view(
    list=extend_schema(
        summary="List webhook deliveries",
        tags=["webhooks"],
        parameters=[WEBHOOK_FILTER],
        description="What was sent to your webhooks, newest first, each with its tries. "
        "`payload` is the exact event body (WebhookEvent). " + SIGNING,
        examples=[response_example("Delivery", WEBHOOK_DELIVERY_EXAMPLE)],
    ),
    retrieve=extend_schema(
        summary="Get a webhook delivery",
        tags=["webhooks"],
        responses={200: WebhookDeliverySerializer, 404: ERROR_404},
        examples=[response_example("Delivery", WEBHOOK_DELIVERY_EXAMPLE)],
    ),
)
class WebhookDeliveryViewSet(
    ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The events sent (or still to send) to your webhooks."""

    permission_classes = [permissions.IsAuthenticated]
    pagination_class = ApiPagination
    serializer_class = WebhookDeliverySerializer
    queryset = WebhookDelivery.objects.all()
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        deliveries = _owned_by(self.request, WebhookDelivery).prefetch_related("attempt_log")
        webhook = self.request.query_params.get("webhook", "")
        if self.action == "list" and webhook:
            valid = webhook.isascii() and webhook.isdigit() and len(webhook) < 19  # a 64-bit id at most
            deliveries = deliveries.filter(webhook_id=int(webhook)) if valid else deliveries.none()
        return deliveries.order_by("-created_at", "-id")

    @extend_schema(
        summary="Send a delivery again",
        tags=["webhooks"],
        request=None,
        responses={
            202: WebhookDeliverySerializer,
            400: validation_error(
                {
                    "non_field_errors": [
                        "Delivery 7 is being sent right now; send it again once this try is over."
                    ]
                }
            ),
            404: ERROR_404,
        },
        examples=[
            response_example(
                "Queued",
                {**WEBHOOK_DELIVERY_EXAMPLE, "status": "pending", "attempts": 0, "delivered_at": None},
                "202",
            )
        ],
        description="The same event id and body with a fresh signature and a fresh set of tries.",
    )
    @action(detail=True, methods=["post"])
    def resend(self, request, pk=None) -> Response:
        delivery = delivery_resend(delivery=self.get_object())
        data: dict[str, Any] = WebhookDeliverySerializer(delivery).data
        return Response(data, status=status.HTTP_202_ACCEPTED)
