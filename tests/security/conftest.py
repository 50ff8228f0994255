"""Two operators of different teams (the attacker and his victim) with the admin rights operators get,
and what the attacker tries to store: a web page with a script."""

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.admin.conftest import OPERATOR_MODELS

PAGE = b"<!doctype html><html><body><script>fetch('/admin/').then(r => r.text())</script></body></html>"


def grant_operator_rights(user):
    actions = ("view", "add", "change", "delete")
    codenames = [f"{action}_{model}" for model in OPERATOR_MODELS for action in actions]
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def attacker(user):
    return grant_operator_rights(user)


@pytest.fixture
def victim(other_user):
    return grant_operator_rights(other_user)


@pytest.fixture(autouse=True)
def queue_only(settings, monkeypatch):
    """Renders are only ever queued here, never run."""
    from django_q.conf import Conf

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}
    monkeypatch.setattr(Conf, "SYNC", False)


def page_upload() -> SimpleUploadedFile:
    """`x.html` sent as the hostile client sends it: a type that says nothing, so only the bytes can tell."""
    return SimpleUploadedFile("x.html", PAGE, content_type="application/octet-stream")


def stored_pages() -> list[Path]:
    """Every file in local storage holding the attacker's page."""
    root = Path(settings.MEDIA_ROOT)
    return [path for path in root.rglob("*") if path.is_file() and PAGE in path.read_bytes()]
