"""Finding: "ffprobe on untrusted uploads accepts HLS playlists". ffprobe reads an upload as one of the
formats the upload may be, from this one local file: a playlist is refused before anything it lists
is opened."""

import os
import threading
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.api.conftest import client_for as api_client_for

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url, message",
    [
        (
            "/api/v1/clips/",
            "The upload is not a readable video file. Clips must be MP4, MOV, WebM or Matroska video.",
        ),
        (
            "/api/v1/music/",
            "The upload is not a readable audio file. "
            "Audio must be WAV, MP3, M4A, Ogg or FLAC with an audio stream.",
        ),
    ],
    ids=["clip", "music"],
)
def test_hls_playlist_upload_is_refused_without_opening_what_it_lists(attacker, tmp_path, url, message):
    """An HLS playlist names other files (here a FIFO, so any attempt to read it shows); ffprobe
    must refuse the playlist before opening them."""
    segment = tmp_path / "segment.ts"
    os.mkfifo(segment)
    playlist = f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{segment}\n#EXT-X-ENDLIST\n".encode()
    opened, done = [], threading.Event()

    def watch_the_fifo() -> None:
        while not done.is_set():
            try:  # succeeds only while a reader (ffprobe) has the FIFO open
                os.close(os.open(segment, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                time.sleep(0.005)
            else:
                opened.append(True)
                return

    watcher = threading.Thread(target=watch_the_fifo)
    watcher.start()
    try:
        upload = SimpleUploadedFile("clip.mp4", playlist, content_type="application/octet-stream")
        response = api_client_for(attacker).post(url, {"file": upload}, format="multipart")
    finally:
        done.set()
        watcher.join()
    assert opened == [], "ffprobe opened a file the playlist named"
    assert response.status_code == 400
    assert response.json()["file"] == [message]
