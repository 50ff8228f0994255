"""The webhooks' admin pages (registered by jobs.admin): a user's webhooks, and the deliveries sent to
them with every try, re-sendable. The work is jobs.webhooks'; an operator sees only the current team's
rows (a webhook is never a shared preset)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse

from accounts import teams
from accounts.admin import OwnedAdmin
from jobs.models import EventKind, Webhook, WebhookAttempt, WebhookDelivery
from jobs.webhooks import addresses, subscriptions
from jobs.webhooks.delivery import delivery_resend


class WebhookForm(forms.ModelForm):
    url = forms.CharField(max_length=2000, help_text="Where events are POSTed; public addresses only.")
    events = forms.MultipleChoiceField(
        choices=EventKind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: all of them.",
    )

    class Meta:
        model = Webhook
        fields = ["url", "description", "events", "is_active", "team", "owner"]

    def clean_url(self) -> str:
        return addresses.url_check(self.cleaned_data["url"])  # the API's words: jobs.webhooks


def _secrets_page(request, pairs: list[tuple[Webhook, str]]) -> TemplateResponse:
    """The new secrets, shown on this one page and kept nowhere else (not in messages, not in the session)."""
    # The admin's pages are never cached (no-store): nor is this one.
    return TemplateResponse(
        request,
        "admin/jobs/webhook/secrets.html",
        {**admin.site.each_context(request), "title": "Webhook secrets", "secrets": pairs},
    )


@admin.register(Webhook)
class WebhookAdmin(OwnedAdmin):
    form = WebhookForm
    list_display = ["url", "description", "events", "is_active", "secret_hint", "team", "owner", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["url", "description"]
    list_select_related = ["team", "owner"]
    readonly_fields = ["secret_hint"]
    actions = ["rotate_secret"]

    def get_queryset(self, request):
        webhooks = super().get_queryset(request)
        return webhooks if request.user.is_superuser else webhooks.filter(team__isnull=False)

    @admin.display(description="Secret")
    def secret_hint(self, webhook: Webhook) -> str:
        return subscriptions.secret_hint(webhook.secret)

    def save_model(self, request, obj: Webhook, form: WebhookForm, change: bool) -> None:
        if not change:
            self.default_owner(request, obj, change)
            obj.secret = subscriptions.secret_new()
        subscriptions.webhook_update(
            webhook=obj, url=obj.url, description=obj.description, events=obj.events, is_active=obj.is_active
        )

    def response_add(self, request, obj: Webhook, post_url_continue=None):
        return _secrets_page(request, [(obj, obj.secret)])

    @admin.action(description="Give the selected webhooks new secrets", permissions=["change"])
    def rotate_secret(self, request, queryset) -> TemplateResponse:
        return _secrets_page(
            request, [(webhook, subscriptions.webhook_rotate_secret(webhook=webhook)) for webhook in queryset]
        )


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = readonly_fields = ["created_at", "status_code", "error", "duration_ms"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "event_id",
        "webhook",
        "status",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "webhook__team",
        "created_at",
    ]
    list_filter = ["status", "kind", "created_at"]
    search_fields = ["event_id", "webhook__url"]
    list_select_related = ["webhook__team"]
    readonly_fields = [
        "webhook",
        "event_id",
        "kind",
        "payload",
        "status",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "created_at",
    ]
    inlines = [WebhookAttemptInline]
    actions = ["resend"]

    def get_queryset(self, request):
        deliveries = super().get_queryset(request)
        if request.user.is_superuser:
            return deliveries
        return deliveries.filter(webhook__team=teams.current_team(request), webhook__team__isnull=False)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Send the selected deliveries again", permissions=["change"])
    def resend(self, request, queryset) -> None:
        queued = 0
        for delivery in queryset:
            try:
                delivery_resend(delivery=delivery)
                queued += 1
            except ValidationError as error:
                self.message_user(request, " ".join(error.messages), messages.WARNING)
        self.message_user(request, f"{queued} deliveries queued to be sent again.", messages.SUCCESS)
