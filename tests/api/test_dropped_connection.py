"""A read whose database connection is dropped mid-request is answered on a new connection
(batchvideo.middleware.ReadAgainMiddleware); a write is not repeated."""

import pytest
from django.db import OperationalError, connection

from jobs.api import views
from tests.api.conftest import client_for
from tests.factories import make_job, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def _drop_the_connection_once(monkeypatch) -> list[str]:
    """The job list's query runs on a connection the database ends (pg_terminate_backend), once."""
    dropped: list[str] = []
    real = views.JobViewSet.get_queryset

    def get_queryset(view):
        if not dropped:
            dropped.append(view.request.method)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return real(view)

    monkeypatch.setattr(views.JobViewSet, "get_queryset", get_queryset)
    return dropped


def test_a_read_whose_database_connection_is_dropped_mid_request_is_answered_not_a_500(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("pg_terminate_backend is PostgreSQL's")
    owner = make_user()
    job = make_job(owner=owner, title="survives")
    client = client_for(owner)
    dropped = _drop_the_connection_once(monkeypatch)
    response = client.get("/api/v1/jobs/")
    assert dropped == ["GET"]
    assert response.status_code == 200, response.content[:300]
    assert [row["id"] for row in response.json()["results"]] == [job.pk]


def test_a_write_whose_database_connection_is_dropped_is_not_repeated(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("pg_terminate_backend is PostgreSQL's")
    owner = make_user()
    job = make_job(owner=owner)
    client = client_for(owner)
    client.raise_request_exception = True
    dropped = _drop_the_connection_once(monkeypatch)
    with pytest.raises(OperationalError):
        client.post(f"/api/v1/jobs/{job.pk}/render/")
    connection.close()  # a server's request end does this (close_old_connections)
    assert dropped == ["POST"]
