"""No built-in secret: links and tickets signed with the key that used to be written in the repository
(the settings' fallback when SECRET_KEY was unset) open nothing. The forger re-signs exactly what a
genuine link or ticket carries, so only the key differs."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client

from batchvideo.asgi import application
from batchvideo.storage import MEDIA_SIGNING_SALT
from jobs import progress
from tests.factories import make_job, make_user

REPOSITORY_KEY = "insecure-batchvideo-default-key-set-SECRET_KEY-in-production"


def resigned_with_the_repository_key(token: str, salt: str) -> str:
    payload = signing.TimestampSigner(salt=salt).unsign_object(token)
    return signing.TimestampSigner(key=REPOSITORY_KEY, salt=salt).sign_object(payload)


def test_files_link_signed_with_the_repository_key_is_refused(db):
    key = default_storage.save("jobs/1/1/subtitles.srt", ContentFile(
        b"1\n00:00:00,000 --> 00:00:01,000\nhi\n"))
    genuine = default_storage.url(key)
    token = genuine.removeprefix("/files/")
    forged = f"/files/{resigned_with_the_repository_key(token, MEDIA_SIGNING_SALT)}"
    anonymous = Client()
    assert anonymous.get(genuine).status_code == 200
    assert anonymous.get(forged).status_code == 404


@pytest.mark.django_db(transaction=True)
async def test_websocket_ticket_signed_with_the_repository_key_is_refused(settings):
    settings.REDIS_URL = ""  # the consumer reads the database; no layer needed
    victim = await sync_to_async(make_user)()
    job = await sync_to_async(make_job)(owner=victim)
    genuine = await sync_to_async(progress.ws_ticket_issue)(user=victim)
    forged = resigned_with_the_repository_key(genuine, progress.WS_TICKET_SALT)
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]

    connection = WebsocketCommunicator(application, f"/ws/jobs/{job.pk}/?ticket={forged}", headers=headers)
    await connection.connect()
    assert await connection.receive_output(timeout=2) == {"type": "websocket.close", "code": 4401}

    connection = WebsocketCommunicator(application, f"/ws/jobs/{job.pk}/?ticket={genuine}", headers=headers)
    await connection.connect()
    assert (await connection.receive_json_from(timeout=3))["type"] == "init"
    await connection.disconnect()
