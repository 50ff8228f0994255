import io
import subprocess
import wave
from pathlib import Path

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import make_user


@pytest.fixture(autouse=True)
def api_defaults(settings, monkeypatch):
    """Fresh throttle counts per test, and renders only ever queued, never run."""
    from django_q.conf import Conf

    cache.clear()
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}
    monkeypatch.setattr(Conf, "SYNC", False)
    yield
    cache.clear()


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def member(db):
    """An ordinary (non-staff) user."""
    return make_user()


@pytest.fixture
def stranger(db):
    return make_user()


@pytest.fixture
def api(member) -> APIClient:
    return client_for(member)


@pytest.fixture
def stranger_api(stranger) -> APIClient:
    return client_for(stranger)


@pytest.fixture
def admin_api(superuser) -> APIClient:
    return client_for(superuser)


@pytest.fixture
def anon_api(db) -> APIClient:
    return APIClient()


def png_bytes(size: tuple[int, int] = (8, 8), image_format: str = "PNG") -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format=image_format)
    return out.getvalue()


def wav_bytes(seconds: float = 0.2, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(b"\x00\x01" * int(seconds * rate))
    return out.getvalue()


def tiny_video(path: Path) -> Path:
    """A 1 s 64x36 H.264 MP4 made by ffmpeg's test source."""
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x36:rate=10",
            "-t",
            "1",
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path
