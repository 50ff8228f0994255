import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import User
from tests.factories import make_user

REGISTER = "/api/v1/auth/register/"
LOGIN = "/api/v1/auth/token/"
PASSWORD = "a long pass phrase"


@pytest.fixture
def registration_open(settings):
    settings.API_REGISTRATION_OPEN = True


def test_registration_is_closed_by_default(anon_api):
    response = anon_api.post(REGISTER, {"username": "intruder", "password": PASSWORD}, format="json")
    assert response.status_code == 403
    assert response.data["detail"] == "Registration is closed; ask an administrator."
    assert not User.objects.filter(username="intruder").exists()


def test_register_logs_in_with_a_token(anon_api, registration_open):
    response = anon_api.post(REGISTER, {"username": "editor", "password": PASSWORD}, format="json")
    assert response.status_code == 201, response.data
    user = User.objects.get(username="editor")
    assert user.check_password(PASSWORD) and not user.is_staff
    assert response.data["token"] == Token.objects.get(user=user).key
    assert "password" not in response.data
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.data['token']}")
    assert client.get("/api/v1/auth/me/").data["username"] == "editor"


def test_register_applies_the_password_rules(anon_api, registration_open):
    response = anon_api.post(REGISTER, {"username": "editor", "password": "123"}, format="json")
    assert response.status_code == 400
    messages = " ".join(response.data["password"])
    assert "too short" in messages and "entirely numeric" in messages
    response = anon_api.post(REGISTER, {"username": "editor", "password": "editor-1"}, format="json")
    assert response.status_code == 400 and "password" in response.data  # too similar to the username


def test_register_rejects_taken_or_invalid_usernames(anon_api, registration_open):
    make_user(username="Taken")
    response = anon_api.post(REGISTER, {"username": "taken", "password": PASSWORD}, format="json")
    assert response.status_code == 400 and "username" in response.data
    response = anon_api.post(REGISTER, {"username": "no spaces!", "password": PASSWORD}, format="json")
    assert response.status_code == 400 and "username" in response.data


def test_token_login_and_logout(anon_api, db):
    user = make_user(username="editor", password=PASSWORD)
    response = anon_api.post(LOGIN, {"username": "editor", "password": "wrong"}, format="json")
    assert response.status_code == 400 and "non_field_errors" in response.data
    response = anon_api.post(LOGIN, {"username": "editor", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    token = response.data["token"]
    user.refresh_from_db()
    assert user.last_login is not None
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/auth/me/").status_code == 200
    assert client.post("/api/v1/auth/logout/").status_code == 204
    assert not Token.objects.filter(key=token).exists()
    assert client.get("/api/v1/auth/me/").status_code == 401


def test_me_needs_a_login(anon_api):
    response = anon_api.get("/api/v1/auth/me/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_inactive_users_cannot_log_in(anon_api, db):
    make_user(username="gone", password=PASSWORD, is_active=False)
    response = anon_api.post(LOGIN, {"username": "gone", "password": PASSWORD}, format="json")
    assert response.status_code == 400


def test_requests_are_throttled_per_user_with_retry_after(api, settings):
    settings.API_THROTTLE_USER = "3/min"
    for _ in range(3):
        assert api.get("/api/v1/jobs/").status_code == 200
    response = api.get("/api/v1/jobs/")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60


def test_anonymous_clients_are_throttled_by_address(anon_api, settings):
    settings.API_THROTTLE_ANON = "2/min"
    for _ in range(2):
        anon_api.post(LOGIN, {"username": "a", "password": "b"}, format="json")
    response = anon_api.post(LOGIN, {"username": "a", "password": "b"}, format="json")
    assert response.status_code == 429 and "Retry-After" in response


def test_throttling_can_be_turned_off(api, settings):
    settings.API_THROTTLE_USER = "none"
    for _ in range(5):
        assert api.get("/api/v1/auth/me/").status_code == 200
