"""Finding: "Stored script on our own origin". A stored file reaches the browser as what its bytes
are: audio, video and pictures play in place, anything else (a page, a script, an SVG) is a download
of unknown type, and `nosniff` keeps browsers to the type sent."""

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client

from tests.api.conftest import png_bytes, tiny_video, wav_bytes
from tests.security.conftest import PAGE

pytestmark = pytest.mark.django_db


def fetch(url: str):
    response = Client().get(url)  # the link needs no login: anyone holding it
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


@pytest.mark.parametrize(
    "key", ["jobs/1/1/x.html", "accounts/logos/x.png", "voices/references/x.svg", "clips/x.mp4"]
)
def test_stored_script_is_sent_as_a_download_never_inline(key):
    """A page in storage, whatever its name says, reaches the browser as bytes to save, not a page."""
    key = default_storage.save(key, ContentFile(PAGE))
    response, body = fetch(default_storage.url(key))
    assert response.status_code == 200 and body == PAGE
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")
    assert response["X-Content-Type-Options"] == "nosniff"


def test_stored_script_checks_leave_media_inline_with_their_type(tmp_path):
    """What the pages show (pictures, audio, video, subtitles) still plays in place."""
    subtitles = "1\n00:00:00,000 --> 00:00:01,000\n<script>not run</script>\n"
    files = {
        "jobs/1/pictures/000.png": (png_bytes(), "image/png"),
        "jobs/1/1/narration.wav": (wav_bytes(), "audio/wav"),
        "jobs/1/1/video.mp4": (tiny_video(tmp_path / "video.mp4").read_bytes(), "video/mp4"),
        "jobs/1/1/subtitles.srt": (subtitles.encode(), "text/plain; charset=utf-8"),
    }
    for key, (content, content_type) in files.items():
        key = default_storage.save(key, ContentFile(content))
        response, body = fetch(default_storage.url(key))
        assert (response["Content-Type"], body) == (content_type, content), key
        assert not response.get("Content-Disposition", "").startswith("attachment")
        assert response["X-Content-Type-Options"] == "nosniff"


def test_media_links_answer_byte_ranges_so_players_can_seek(client):
    key = default_storage.save("jobs/1/2/narration.wav", ContentFile(wav_bytes()))
    size = default_storage.size(key)
    url = default_storage.url(key)

    whole = client.get(url)
    part = client.get(url, HTTP_RANGE="bytes=100-199")
    tail = client.get(url, HTTP_RANGE="bytes=-10")
    beyond = client.get(url, HTTP_RANGE=f"bytes={size}-")

    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes"
    content = b"".join(whole.streaming_content)
    assert part.status_code == 206 and part["Content-Range"] == f"bytes 100-199/{size}"
    assert b"".join(part.streaming_content) == content[100:200]
    assert tail.status_code == 206 and b"".join(tail.streaming_content) == content[-10:]
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{size}"


def test_a_range_of_thousands_of_digits_is_answered_not_a_server_error(client):
    """int() refuses strings past 4,300 digits: a 5,000-digit position is past any file's end (416),
    and the last 10**5000 bytes of a file are all of it."""
    key = default_storage.save("jobs/1/2/narration.wav", ContentFile(wav_bytes()))
    size = default_storage.size(key)
    url = default_storage.url(key)
    digits = "9" * 5000

    start = client.get(url, HTTP_RANGE=f"bytes={digits}-")
    end = client.get(url, HTTP_RANGE=f"bytes=0-{digits}")
    suffix = client.get(url, HTTP_RANGE=f"bytes=-{digits}")

    assert start.status_code == 416 and start["Content-Range"] == f"bytes */{size}"
    assert end.status_code == 206 and end["Content-Range"] == f"bytes 0-{size - 1}/{size}"
    assert suffix.status_code == 206 and suffix["Content-Range"] == f"bytes 0-{size - 1}/{size}"
