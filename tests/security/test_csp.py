"""Finding: "Stored script on our own origin": even text that reaches a page cannot run there, the
pages send a Content-Security-Policy allowing scripts from our own static files only."""

import pytest
from django.test import Client
from django.urls import reverse

from tests.admin.conftest import client_for
from tests.factories import make_job

pytestmark = pytest.mark.django_db


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in header.split(";") if part.strip())}


def test_stored_script_cannot_run_in_the_admin_or_the_progress_page(attacker):
    job = make_job(owner=attacker)
    pages = [
        (Client(), "/admin/login/"),
        (client_for(attacker), "/admin/"),
        (client_for(attacker), reverse("admin:jobs_job_change", args=[job.pk])),
        (client_for(attacker), reverse("admin:jobs_job_storyboard", args=[job.pk])),
        (client_for(attacker), reverse("job-progress", args=[job.pk])),
    ]
    for client, url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        directives = policy(response)
        assert directives["script-src"] == ["'self'"], url
        assert directives["object-src"] == ["'none'"] and directives["base-uri"] == ["'self'"], url
        assert {"'self'", "ws:", "wss:"} <= set(directives["connect-src"]), url
        assert response["X-Content-Type-Options"] == "nosniff"
