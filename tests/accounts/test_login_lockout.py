"""Password guessing, tried as an attacker would: on the admin's login page and the API's token login,
with a different X-Forwarded-For header on every try (the header is the client's own text)."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import make_user

ADMIN_LOGIN = "/admin/login/"
API_LOGIN = "/api/v1/auth/token/"
PASSWORD = "a long pass phrase"
LOCKED_OUT = "Too many failed logins from your address"
LIMIT = 10  # settings.AXES_FAILURE_LIMIT (LOGIN_FAILURE_LIMIT), at its default


@pytest.fixture(autouse=True)
def fresh_counts(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    cache.clear()  # the API's throttle counts
    yield
    cache.clear()


@pytest.fixture
def operator(db):
    return make_user(username="operator", password=PASSWORD, is_staff=True, is_superuser=True)


def admin_login(client: Client, password: str, forwarded_for: str) -> object:
    return client.post(
        ADMIN_LOGIN,
        {"username": "operator", "password": password, "next": "/admin/"},
        HTTP_X_FORWARDED_FOR=forwarded_for,
    )


def api_login(client: APIClient, password: str, forwarded_for: str) -> object:
    return client.post(
        API_LOGIN,
        {"username": "operator", "password": password},
        format="json",
        HTTP_X_FORWARDED_FOR=forwarded_for,
    )


def cool_off_passes(settings) -> None:
    """Time passes: every recorded failure is now older than the cool-off (and the throttle's minute)."""
    from axes.models import AccessAttempt

    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    )
    cache.clear()


def test_admin_login_locks_out_a_guesser_who_rotates_x_forwarded_for(operator, settings):
    client = Client()
    statuses = [admin_login(client, f"guess {i}", f"10.0.{i}.1").status_code for i in range(80)]
    assert statuses[: LIMIT - 1] == [200] * (LIMIT - 1)  # the form again, "enter the correct password"
    assert set(statuses[LIMIT - 1 :]) == {429}, statuses

    response = admin_login(client, PASSWORD, "10.0.200.1")
    assert response.status_code == 429
    assert LOCKED_OUT in response.content.decode()
    assert client.get("/admin/").status_code == 302  # not logged in

    cool_off_passes(settings)
    assert admin_login(client, PASSWORD, "10.0.201.1").status_code == 302
    assert client.get("/admin/").status_code == 200


def test_api_login_locks_out_a_guesser_who_rotates_x_forwarded_for(operator):
    client = APIClient()
    statuses = [api_login(client, f"guess {i}", f"10.0.{i}.1").status_code for i in range(80)]
    assert statuses[: LIMIT - 1] == [400] * (LIMIT - 1)
    assert set(statuses[LIMIT - 1 :]) == {429}, statuses


def test_api_login_refuses_the_right_password_until_the_cool_off(operator, settings):
    client = APIClient()
    for i in range(LIMIT):
        api_login(client, f"guess {i}", f"10.0.{i}.1")

    response = api_login(client, PASSWORD, "10.0.200.1")
    assert response.status_code == 429
    assert response.data["detail"].startswith(LOCKED_OUT)
    assert int(response["Retry-After"]) == settings.AXES_COOLOFF_TIME.total_seconds()
    assert "token" not in response.data

    cool_off_passes(settings)
    response = api_login(client, PASSWORD, "10.0.201.1")
    assert response.status_code == 200 and response.data["token"]


def test_anonymous_throttle_ignores_a_rotating_x_forwarded_for(db, settings):
    settings.API_THROTTLE_ANON = "5/min"
    client = APIClient()
    statuses = [api_login(client, f"guess {i}", f"10.0.{i}.1").status_code for i in range(6)]
    assert statuses == [400] * 5 + [429]


def test_behind_one_proxy_the_client_is_the_address_the_proxy_appended(operator, settings):
    """NUM_PROXIES=1: the proxy (REMOTE_ADDR) appends the address it saw; what the client wrote before
    it is ignored, so rotating it does not help, and other clients behind the same proxy still log in."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    client = APIClient()
    attacker, colleague = "203.0.113.7", "198.51.100.9"
    for i in range(LIMIT):
        api_login(client, f"guess {i}", f"10.0.{i}.1, {attacker}")

    assert api_login(client, PASSWORD, f"10.0.200.1, {attacker}").status_code == 429
    assert api_login(client, PASSWORD, colleague).status_code == 200
