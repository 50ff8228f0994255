"""Stock footage: the clip library searched by a segment's keywords, and Pexels and Pixabay faked by a
real HTTP server on 127.0.0.1 with their documented request and response shapes, 429s, 5xx and a slow
answer. Nothing here reaches the internet."""

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.cache import caches

from jobs import services
from jobs.footage import stock
from jobs.models import ExecutionStatus, StockClip
from jobs.render import loop as renders
from media_engine import stock as providers
from media_engine.errors import MediaError
from tests.factories import make_preset_job

pytestmark = pytest.mark.django_db


def make_clip_file(path: Path, colour: str, seconds: float = 1.0) -> Path:
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
            f"color=c={colour}:s=320x180:r=30:d={seconds}",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
    )
    return path


@dataclass
class FakeStock:
    """Pexels (/videos/search) and Pixabay (/api/videos/) on one server, and their files (/files/...).
    `script[path]` lists (status, delay s) answers given before the real one, in order."""

    files: dict[str, bytes] = field(default_factory=dict)
    script: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    requests: list[dict] = field(default_factory=list)
    url: str = ""

    def pexels_answer(self, query: str) -> dict:
        return {
            "page": 1,
            "per_page": 3,
            "total_results": 1,
            "url": f"https://www.pexels.com/search/{query}/",
            "videos": [
                {
                    "id": 1000,
                    "width": 1920,
                    "height": 1080,
                    "duration": 1,
                    "url": f"https://www.pexels.com/video/{query.replace(' ', '-')}-waves-at-dusk-1000/",
                    "image": f"{self.url}/files/thumb.jpg",
                    "user": {"id": 7, "name": "Ana Costa", "url": "https://www.pexels.com/@ana"},
                    "video_files": [
                        {
                            "id": 1,
                            "quality": "sd",
                            "file_type": "video/mp4",
                            "width": 640,
                            "height": 360,
                            "fps": 30,
                            "link": f"{self.url}/files/pexels-sd.mp4",
                        },
                        {
                            "id": 2,
                            "quality": "hd",
                            "file_type": "video/mp4",
                            "width": 1280,
                            "height": 720,
                            "fps": 30,
                            "link": f"{self.url}/files/pexels-hd.mp4",
                        },
                        {
                            "id": 3,
                            "quality": "hd",
                            "file_type": "video/mp4",
                            "width": 1920,
                            "height": 1080,
                            "fps": 30,
                            "link": f"{self.url}/files/pexels-fhd.mp4",
                        },
                    ],
                    "video_pictures": [],
                }
            ],
        }

    def pixabay_answer(self, query: str) -> dict:
        def size(width: int, height: int, name: str) -> dict:
            return {
                "url": f"{self.url}/files/{name}",
                "width": width,
                "height": height,
                "size": 1000,
                "thumbnail": f"{self.url}/files/thumb.jpg",
            }

        return {
            "total": 1,
            "totalHits": 1,
            "hits": [
                {
                    "id": 2000,
                    "pageURL": "https://pixabay.com/videos/mountain-snow-peak-2000/",
                    "type": "film",
                    "tags": "mountain, snow, peak",
                    "duration": 1,
                    "videos": {
                        "large": size(1920, 1080, "pixabay-large.mp4"),
                        "medium": size(1280, 720, "pixabay-medium.mp4"),
                        "small": size(960, 540, "pixabay-small.mp4"),
                        "tiny": size(640, 360, "pixabay-tiny.mp4"),
                    },
                    "views": 10,
                    "downloads": 5,
                    "likes": 1,
                    "comments": 0,
                    "user_id": 9,
                    "user": "PeakFilms",
                    "userImageURL": "",
                }
            ],
        }


@pytest.fixture
def fake_stock(tmp_path, settings) -> Iterator[FakeStock]:
    fake = FakeStock()
    for name, colour in [
        ("pexels-sd.mp4", "blue"),
        ("pexels-hd.mp4", "orange"),
        ("pexels-fhd.mp4", "teal"),
        ("pixabay-medium.mp4", "white"),
        ("pixabay-large.mp4", "gray"),
        ("pixabay-small.mp4", "silver"),
        ("pixabay-tiny.mp4", "black"),
    ]:
        fake.files[name] = make_clip_file(tmp_path / name, colour).read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the http.server API
            parsed = urlparse(self.path)
            query = {key: values[0] for key, values in parse_qs(parsed.query).items()}
            fake.requests.append(
                {"path": parsed.path, "query": query, "auth": self.headers.get("Authorization")}
            )
            script = fake.script.get(parsed.path) or []
            if script:
                status, delay = script.pop(0)
                time.sleep(delay)
                if status != 200:
                    return self.answer(
                        status, b'{"error": "scripted"}', {"Retry-After": "0"} if status == 429 else {}
                    )
            if parsed.path == "/videos/search":
                if self.headers.get("Authorization") != "pexels-key":
                    return self.answer(401, b'{"error": "bad key"}')
                return self.answer(200, json.dumps(fake.pexels_answer(query["query"])).encode())
            if parsed.path == "/api/videos/":
                if query.get("key") != "pixabay-key":
                    return self.answer(400, b"[ERROR 400] Invalid or missing API key")
                return self.answer(200, json.dumps(fake.pixabay_answer(query["q"])).encode())
            name = parsed.path.removeprefix("/files/")
            if name in fake.files:
                return self.answer(200, fake.files[name], content_type="video/mp4")
            return self.answer(404, b"not found")

        def answer(
            self,
            status: int,
            body: bytes,
            headers: dict | None = None,
            content_type: str = "application/json",
        ) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.block_on_close = False
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    settings.STOCK_PROVIDERS = {
        "pexels": {"key": "pexels-key", "base_url": fake.url, "budget": 50, "window_s": 3600},
        "pixabay": {"key": "pixabay-key", "base_url": fake.url, "budget": 50, "window_s": 60},
    }
    settings.STOCK_TIMEOUT_S = 1.0
    settings.STOCK_BACKOFF_S = 0.01
    settings.STOCK_ATTEMPTS = 3
    caches["cluster"].clear()
    yield fake
    httpd.shutdown()
    httpd.server_close()


def searches(fake: FakeStock, path: str) -> list[dict]:
    return [request for request in fake.requests if request["path"] == path]


# ---------------------------------------------------------------- the library


def test_library_search_ranks_clips_whose_tags_name_the_keywords(tmp_path):
    sea = services.clip_import(path=make_clip_file(tmp_path / "a.mp4", "blue"), tags="大海,波浪")
    snow = services.clip_import(path=make_clip_file(tmp_path / "b.mp4", "white"), tags="高山,白雪")
    city = services.clip_import(path=make_clip_file(tmp_path / "c.mp4", "gray"), tags="city,street")
    StockClip.objects.filter(pk=city.pk).update(description="A busy street market in the old town")

    assert [clip_id for clip_id, _score in stock.library_search(terms=["波浪", "沙滩"])] == [sea.pk]
    assert [clip_id for clip_id, _score in stock.library_search(terms=["白雪", "高山"])] == [snow.pk]
    assert stock.library_search(terms=["market"])[0][0] == city.pk  # the description counts too
    assert stock.library_search(terms=["volcano"]) == []
    # The fallback where there is no full-text search (SQLite) ranks the same way.
    assert stock._word_search(StockClip.objects.all(), ["波浪", "沙滩"], 5)[0][0] == sea.pk


@pytest.mark.slow
def test_a_job_gets_the_library_clips_that_fit_its_segments_over_random_ones(settings, tmp_path):
    settings.SEGMENT_TARGET_MS = 500
    # Plenty of clips that fit nothing, so a random pick would rarely hit the right ones.
    for number in range(6):
        services.clip_import(
            path=make_clip_file(tmp_path / f"other{number}.mp4", "gray"), tags=f"城市,{number}"
        )
    sea = services.clip_import(path=make_clip_file(tmp_path / "sea.mp4", "blue", 2.0), tags="大海,波浪")
    snow = services.clip_import(path=make_clip_file(tmp_path / "snow.mp4", "white", 2.0), tags="高山,白雪")
    job = make_preset_job(
        content="大海的波浪拍打着沙滩。高山上覆盖着白雪。",
        extra={"real_clip_ratio": 1.0, "segment_target_ms": 500},
    )

    execution = renders.execution_run(execution=services.execution_create(job=job))

    assert execution.status == ExecutionStatus.SUCCESS, execution.detail
    splits = list(job.splits.order_by("index"))
    assert [split.clip_id for split in splits] == [sea.pk, snow.pk]
    assert "波浪" in splits[0].keywords and splits[0].clip_candidates[0]["id"] == sea.pk
    assert len({split.clip_id for split in splits}) == len(splits)


# ---------------------------------------------------------------- the providers


def test_pexels_finds_are_downloaded_once_into_the_library_with_their_credit(fake_stock):
    job = make_preset_job(content="大海的波浪。", extra={"real_clip_ratio": 1.0})
    candidates, notes = stock.segment_candidates(job=job, keywords=[["ocean waves"]], remote=True)

    assert notes == []
    [search] = searches(fake_stock, "/videos/search")
    assert search["auth"] == "pexels-key"
    assert search["query"] == {
        "query": "ocean waves",
        "orientation": "landscape",
        "per_page": "3",
        "size": "medium",
    }
    pexels = StockClip.objects.get(provider="pexels")
    # The smallest file at least 720 px on its short side.
    assert (pexels.width, pexels.height) == (320, 180)  # the fake serves small files under the HD names
    assert any(r["path"] == "/files/pexels-hd.mp4" for r in fake_stock.requests)
    assert (
        pexels.author == "Ana Costa" and pexels.licence == "Pexels License" and pexels.search == "ocean waves"
    )
    assert pexels.page_url.startswith("https://www.pexels.com/video/") and pexels.thumbnail
    assert "ocean waves" in pexels.tag_set and pexels.sha256 and pexels.shots == [[0, 1000]]
    assert stock.clip_credit(pexels) == f"Video by Ana Costa on Pexels (Pexels License): {pexels.page_url}"
    assert candidates[0][0]["id"] == pexels.pk
    # Pixabay filled the rest, same file size rules, its tags kept.
    pixabay = StockClip.objects.get(provider="pixabay")
    assert pixabay.author == "PeakFilms" and {"mountain", "snow"} <= pixabay.tag_set
    assert any(r["path"] == "/files/pixabay-medium.mp4" for r in fake_stock.requests)

    # A second search finds them in the library, or at least downloads nothing again.
    downloads = len([r for r in fake_stock.requests if r["path"].startswith("/files/")])
    stock.segment_candidates(job=job, keywords=[["ocean waves"], ["ocean"]], remote=True)
    assert len([r for r in fake_stock.requests if r["path"].startswith("/files/")]) == downloads
    assert StockClip.objects.filter(provider="pexels").count() == 1


def test_the_same_file_under_another_id_is_stored_once(fake_stock):
    first = stock.clip_from_hit(
        stock.provider_for("pexels").search("sea", orientation="landscape")[0], search="sea"
    )
    hit = stock.provider_for("pexels").search("sea", orientation="landscape")[0]
    again = stock.clip_from_hit(providers.StockHit(**{**hit.__dict__, "external_id": "other"}), search="sea")
    assert again.pk == first.pk and StockClip.objects.count() == 1


def test_a_429_is_retried_after_its_retry_after(fake_stock):
    fake_stock.script["/videos/search"] = [(429, 0.0), (429, 0.0)]
    hits = stock.provider_for("pexels").search("forest", orientation="portrait")
    assert len(hits) == 1 and len(searches(fake_stock, "/videos/search")) == 3
    assert searches(fake_stock, "/videos/search")[-1]["query"]["orientation"] == "portrait"


@pytest.mark.parametrize(
    "answers", [[(500, 0.0)] * 3, [(503, 0.0)] * 3, [(200, 2.5)] * 3], ids=["500", "503", "slow"]
)
def test_a_failing_provider_is_skipped_and_said_the_rest_goes_on(fake_stock, answers):
    fake_stock.script["/videos/search"] = list(answers)
    job = make_preset_job(content="大海的波浪。", extra={"real_clip_ratio": 1.0})
    candidates, notes = stock.segment_candidates(job=job, keywords=[["sea"], ["snow"]], remote=True)

    assert len(searches(fake_stock, "/videos/search")) == 3  # three attempts, then not asked again
    assert len(notes) == 1 and notes[0].startswith("pexels search:") and "3 attempt(s)" in notes[0]
    assert not StockClip.objects.filter(provider="pexels").exists()
    assert candidates[0] and StockClip.objects.get(pk=candidates[0][0]["id"]).provider == "pixabay"


def test_a_refused_key_is_not_retried(fake_stock, settings):
    settings.STOCK_PROVIDERS["pexels"]["key"] = "wrong"
    with pytest.raises(MediaError, match="HTTP 401") as raised:
        stock.provider_for("pexels").search("sea", orientation="landscape")
    assert raised.value.permanent and len(searches(fake_stock, "/videos/search")) == 1


def test_a_spent_budget_makes_no_request(fake_stock, settings):
    settings.STOCK_PROVIDERS["pixabay"]["budget"] = 2
    provider = stock.provider_for("pixabay")
    provider.search("sea", orientation="landscape")
    provider.search("sky", orientation="landscape")
    with pytest.raises(MediaError, match="budget"):
        provider.search("sun", orientation="landscape")
    assert len(searches(fake_stock, "/api/videos/")) == 2
    # The count is the key's, whichever worker asks: a new provider object sees it spent too.
    with pytest.raises(MediaError, match="budget"):
        stock.provider_for("pixabay").search("sun", orientation="landscape")


def test_no_keys_means_no_request(fake_stock, settings):
    settings.STOCK_PROVIDERS = {"pexels": {"key": ""}, "pixabay": {"key": ""}}
    job = make_preset_job(content="大海的波浪。", extra={"real_clip_ratio": 1.0})
    assert stock.segment_candidates(job=job, keywords=[["sea"]], remote=True) == ([[]], [])
    assert fake_stock.requests == []


# ---------------------------------------------------------------- the storyboard and the credits


@pytest.mark.slow
def test_candidates_show_in_the_storyboard_and_a_chosen_clip_renders_with_its_credit(fake_stock, settings):
    from django.urls import reverse

    from jobs.publishing.publications import PublishOptions, publish_options_check
    from tests.admin.conftest import client_for, make_operator

    settings.SEGMENT_TARGET_MS = 500
    operator = make_operator()
    job = make_preset_job(
        owner=operator,
        content="大海的波浪拍打着沙滩。",
        description="A day at the sea.",
        extra={"real_clip_ratio": 1.0, "segment_target_ms": 500},
    )
    first = renders.execution_run(execution=services.execution_create(job=job))
    assert first.status == ExecutionStatus.SUCCESS, first.detail
    [split] = job.splits.all()
    pexels, pixabay = StockClip.objects.get(provider="pexels"), StockClip.objects.get(provider="pixabay")
    assert [candidate["id"] for candidate in split.clip_candidates][:2] == [pexels.pk, pixabay.pk]
    assert split.clip_id == pexels.pk  # the clip share took the best-scoring one

    client = client_for(operator)
    page = client.get(reverse("admin:jobs_job_storyboard", args=[job.pk])).content.decode()
    assert page.count('class="clip-candidate') == len(split.clip_candidates)
    assert "Video by PeakFilms on Pixabay" in page and "1.0 s" in page and f'data-clip="{pixabay.pk}"' in page
    assert page.count('<img src="/files/') >= 2  # the thumbnails, signed

    # The operator picks the Pixabay clip instead; the render shows it, the description credits it.
    response = client.post(
        reverse("admin:jobs_job_storyboard", args=[job.pk]),
        {
            f"text-{split.pk}": split.text,
            f"prompt-{split.pk}": split.prompt,
            f"clip-{split.pk}": str(pixabay.pk),
        },
    )
    assert response.status_code in (200, 302)
    split.refresh_from_db()
    assert split.clip_id == pixabay.pk
    second = renders.execution_run(execution=services.execution_create(job=job))
    assert second.status == ExecutionStatus.SUCCESS, second.detail
    assert second.steps["compose"]["status"] == "done"  # composed again, with the chosen clip
    description = publish_options_check(job=job, options=PublishOptions())["description"]
    assert description == (
        "A day at the sea.\n\nCredits:\nVideo by PeakFilms on Pixabay (Pixabay Content License): "
        "https://pixabay.com/videos/mountain-snow-peak-2000/"
    )
