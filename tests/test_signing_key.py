"""No built-in secret: links signed with the key that used to be written in the repository (the
settings' fallback when SECRET_KEY was unset) open nothing. The forger re-signs exactly what a genuine
link carries, so only the key differs. (Websocket tickets are no longer signed: each is a random pass
kept in the database, tests/security/test_ws_tickets.py.)"""

from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client

from accounts.storage import MEDIA_SIGNING_SALT

REPOSITORY_KEY = "insecure-batchvideo-default-key-set-SECRET_KEY-in-production"


def resigned_with_the_repository_key(token: str, salt: str) -> str:
    payload = signing.TimestampSigner(salt=salt).unsign_object(token)
    return signing.TimestampSigner(key=REPOSITORY_KEY, salt=salt).sign_object(payload)


def test_files_link_signed_with_the_repository_key_is_refused(db):
    key = default_storage.save(
        "jobs/1/1/subtitles.srt", ContentFile(b"1\n00:00:00,000 --> 00:00:01,000\nhi\n")
    )
    genuine = default_storage.url(key)
    token = genuine.removeprefix("/files/")
    forged = f"/files/{resigned_with_the_repository_key(token, MEDIA_SIGNING_SALT)}"
    anonymous = Client()
    assert anonymous.get(genuine).status_code == 200
    assert anonymous.get(forged).status_code == 404
