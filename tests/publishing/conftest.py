import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from accounts import channels
from accounts.models import Account
from jobs.models import ExecutionStatus, Job, JobExecution
from tests.admin.conftest import make_operator
from tests.factories import make_account, make_execution, make_job, make_language
from tests.publishing import fake_youtube
from tests.webhooks.conftest import receiver  # noqa: F401 - a webhook receiver for the publish events
from voices.models import Language

SRT = (
    "1\n00:00:00,000 --> 00:00:01,500\n今天天气很好。\n\n2\n00:00:01,500 --> 00:00:03,000\n我们去公园散步。\n"
)


@pytest.fixture(scope="session")
def youtube_server(tmp_path_factory):
    fake, server, ca_path = fake_youtube.start(tmp_path_factory.mktemp("fake-youtube"))
    yield fake, ca_path
    server.shutdown()
    server.server_close()


@pytest.fixture
def fake(youtube_server, settings, monkeypatch):
    """A fresh fake YouTube, and settings that point every Google endpoint at it."""
    from django_q.conf import Conf

    fake, ca_path = youtube_server
    fresh = fake_youtube.FakeYouTube(base_url=fake.base_url)
    for name in fake.__dataclass_fields__:
        setattr(fake, name, getattr(fresh, name))
    settings.YOUTUBE_CLIENT_ID = "client-id.apps.example"
    settings.YOUTUBE_CLIENT_SECRET = "client-secret"
    settings.YOUTUBE_AUTH_URI = f"{fake.base_url}/o/oauth2/auth"
    settings.YOUTUBE_TOKEN_URI = f"{fake.base_url}/token"
    settings.YOUTUBE_API_ENDPOINT = f"{fake.base_url}/"
    settings.YOUTUBE_CA_BUNDLE = str(ca_path)
    settings.YOUTUBE_REDIRECT_URL = ""
    settings.YOUTUBE_QUOTA_PROJECT = "test-project"
    settings.YOUTUBE_DAILY_QUOTA = 10000
    settings.YOUTUBE_TEAM_QUOTA_SHARE = 1.0  # the project's budget; tests of the teams' parts set their own
    settings.YOUTUBE_UPLOAD_CHUNK_BYTES = 256 * 1024
    settings.YOUTUBE_UPLOAD_RETRY_WAIT_S = 0.0
    settings.YOUTUBE_RETRY_BACKOFF_S = 60.0
    settings.YOUTUBE_TIMEOUT_S = 20.0  # a hang shows as a failure in seconds, not minutes
    settings.CHANNEL_SECRET_KEYS = [Fernet.generate_key().decode()]
    # Tasks are queued (the ORM broker), never run on the spot: the tests run them as a worker would.
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}
    monkeypatch.setattr(Conf, "SYNC", False)
    return fake


def make_publisher():
    """An operator (tests.admin) who may also see publications and channel connections."""
    user = make_operator()
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_publication", "view_channelcredentials", "delete_channelcredentials"]
        )
    )
    return user


@pytest.fixture
def operator(db):
    return make_publisher()


@pytest.fixture
def attacker(db):
    return make_publisher()


def queued_publications() -> list[int]:
    """The publication ids the queue holds for the workers (django-q2's ORM broker)."""
    from django_q.models import OrmQ

    return [
        package.task["args"][0]
        for package in OrmQ.objects.all()
        if package.task["func"] == "jobs.tasks.run_publication"
    ]


def noise_video(path: Path) -> Path:
    """A real 1 s MP4 of random pixels, lossless: about a megabyte, so the upload takes several chunks."""
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
            "nullsrc=s=320x240:r=10,geq=random(1)*255:128:128",
            "-t",
            "1",
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-qp",
            "0",
            str(path),
        ],
        check=True,
        timeout=120,
    )
    return path


def jpeg_bytes() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 36), (30, 120, 200)).save(out, format="JPEG")
    return out.getvalue()


@dataclass
class Rendered:
    job: Job
    execution: JobExecution
    account: Account
    video: bytes
    cover: bytes


@pytest.fixture(scope="session")
def video_bytes(tmp_path_factory) -> bytes:
    return noise_video(tmp_path_factory.mktemp("video") / "video.mp4").read_bytes()


def make_rendered(owner, video: bytes, **job_fields) -> Rendered:
    """A job of `owner` on their own YouTube channel, with a successful render stored as the render stores it."""
    account = make_account(owner=owner, platform="youtube")
    job_fields.setdefault("publish_title", "公园散步 | A walk in the park")
    job_fields.setdefault("description", "A walk in the park.\nMusic: none.")
    language = Language.objects.filter(owner=owner, code="zh-CN").first() or make_language(
        owner=owner, code="zh-CN"
    )
    job = make_job(owner=owner, account=account, language=language, **job_fields)
    execution = make_execution(job, status=ExecutionStatus.SUCCESS)
    cover = jpeg_bytes()
    folder = f"jobs/{job.pk}/{execution.pk}/"
    execution.results = {
        "video": default_storage.save(folder + "video.mp4", ContentFile(video)),
        "cover": default_storage.save(folder + "cover.jpg", ContentFile(cover)),
        "srt": default_storage.save(folder + "subtitles.srt", ContentFile(SRT.encode())),
    }
    execution.save(update_fields=["results"])
    return Rendered(job=job, execution=execution, account=account, video=video, cover=cover)


def connect(fake, account: Account, refresh_token: str = "refresh-token-1") -> str:
    fake.refresh_tokens.add(refresh_token)
    channels.channel_store_refresh_token(account=account, refresh_token=refresh_token)
    return refresh_token


@pytest.fixture
def rendered(fake, operator, video_bytes) -> Rendered:
    rendered = make_rendered(operator, video_bytes)
    connect(fake, rendered.account)
    return rendered
