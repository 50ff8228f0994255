"""A user's webhooks: their URL, the events they want, and their signing secret."""

import secrets
from typing import Any

from django.core.exceptions import ValidationError

from jobs.models import EventKind, Webhook
from jobs.webhooks.addresses import url_check

SECRET_PREFIX = "whsec_"


def events_check(events: Any) -> list[str]:
    """Event kinds a webhook subscribes to: a list of known kinds (empty: all of them)."""
    if not isinstance(events, list) or not all(isinstance(kind, str) for kind in events):
        raise ValidationError("Events must be a list of event kinds.", code="invalid")
    unknown = [kind for kind in events if kind not in EventKind.values]
    if unknown:
        known = ", ".join(EventKind.values)
        raise ValidationError(f"Unknown event kind(s) {', '.join(unknown)}; known: {known}.", code="invalid")
    return list(dict.fromkeys(events))


def secret_new() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def webhook_create(
    *, user, team, url: str, description: str = "", events: list[str] | None = None, is_active: bool = True
) -> Webhook:
    """A checked webhook of `team`'s, made by `user`, with a new secret: the caller shows it once."""
    if team is None:
        raise ValidationError("A webhook belongs to a team: work in one (the X-Team header) to add it.")
    webhook = Webhook(
        owner=user, team=team, secret=secret_new(), description=description, is_active=is_active
    )
    return webhook_update(webhook=webhook, url=url, events=events or [])


def webhook_update(*, webhook: Webhook, **fields: Any) -> Webhook:
    """Change a webhook's url, description, events or is_active; the URL is checked again."""
    checks = {"url": url_check, "events": events_check}
    errors = {}
    for name, value in fields.items():
        try:
            setattr(webhook, name, checks[name](value) if name in checks else value)
        except ValidationError as error:
            errors[name] = error.messages
    if errors:
        raise ValidationError(errors)
    webhook.full_clean(exclude=["owner", "team", "secret"])
    webhook.save()
    return webhook


def webhook_rotate_secret(*, webhook: Webhook) -> str:
    """A new secret for the webhook, returned once; the old one stops verifying at once."""
    webhook.secret = secret_new()
    webhook.save(update_fields=["secret", "updated_at"])
    return webhook.secret


def secret_hint(secret: str) -> str:
    """Enough of a secret to tell which one it is, too little to sign with."""
    return f"{secret[: len(SECRET_PREFIX) + 4]}…" if secret else ""
