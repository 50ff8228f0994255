"""Websocket tickets (issue 30): the attacker holds one ticket, or a ticket of a token since deleted,
or asks for tickets by the hundred. A ticket opens one socket, once; it dies with the API token that
asked for it; and asking for tickets is throttled like every other API call."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from batchvideo.asgi import application
from tests.factories import make_job, make_user

pytestmark = pytest.mark.django_db(transaction=True)

HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
CLOSED_UNAUTHENTICATED = {"type": "websocket.close", "code": 4401}


@pytest.fixture(autouse=True)
def database_progress(settings):
    settings.REDIS_URL = ""  # the consumer reads the database; no layer needed
    settings.API_THROTTLE_USER = None


def api_with_a_job() -> tuple[APIClient, int]:
    user = make_user()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return api, make_job(owner=user).pk


def ticket_from(api: APIClient) -> str:
    response = api.post("/api/v1/ws-ticket/")
    assert response.status_code == 200
    return response.json()["ticket"]


async def first_message(path: str) -> dict:
    connection = WebsocketCommunicator(application, path, headers=HEADERS)
    await connection.connect()
    message = await connection.receive_output(timeout=3)
    await connection.disconnect()
    return message


async def test_a_ticket_opens_one_socket_once():
    api, job_id = await sync_to_async(api_with_a_job)()
    ticket = await sync_to_async(ticket_from)(api)
    path = f"/ws/jobs/{job_id}/?ticket={ticket}"

    messages = [await first_message(path) for _ in range(3)]

    assert '"type": "init"' in messages[0]["text"]
    assert messages[1:] == [CLOSED_UNAUTHENTICATED, CLOSED_UNAUTHENTICATED]


async def test_a_ticket_dies_with_the_token_that_asked_for_it():
    api, job_id = await sync_to_async(api_with_a_job)()
    ticket = await sync_to_async(ticket_from)(api)
    logout = await sync_to_async(api.post)("/api/v1/auth/logout/")  # deletes the token
    assert logout.status_code == 204

    assert await first_message(f"/ws/jobs/{job_id}/?ticket={ticket}") == CLOSED_UNAUTHENTICATED


def test_asking_for_tickets_is_throttled_like_every_api_call(settings):
    settings.API_THROTTLE_USER = "5/min"
    api, _job_id = api_with_a_job()

    statuses = [api.post("/api/v1/ws-ticket/").status_code for _ in range(6)]

    assert statuses == [200] * 5 + [429]
