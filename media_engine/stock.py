"""Stock video search on Pexels and Pixabay through their documented REST APIs, and the download of
a found file. The clip library (jobs.stock) is searched first; these fill in what it lacks.

One small base class, a name -> dotted path map and MediaError (with its `permanent` flag) as the one
error type. A 429 or 5xx answer, a timeout or a dropped connection is transient: retried with
back-off (a 429's Retry-After when it gives one), then raised, and the caller goes on without this
provider. A provider that has spent its key's budget (`spend` answers False) is not asked.

Pexels: GET https://api.pexels.com/videos/search, header `Authorization: <key>`; Pexels License (free
to use, no attribution required; Pexels asks for credit to the videographer and a link to Pexels).
Pixabay: GET https://pixabay.com/api/videos/?key=<key>; Pixabay Content License (no attribution
required; the API terms ask to show where the results come from, to cache, and not to hot-link).
"""

from __future__ import annotations

import hashlib
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .errors import MediaError, with_retries

MAX_RETRY_AFTER_S = 60.0
DOWNLOAD_CHUNK = 1 << 16


@dataclass(frozen=True)
class StockHit:
    provider: str
    external_id: str
    download_url: str
    page_url: str
    author: str
    title: str
    tags: list[str]
    duration_s: float
    width: int
    height: int
    thumbnail_url: str
    licence: str


@dataclass
class StockProvider:
    """Search one provider. `spend()` is asked before each request: False when the key's budget is
    spent (the request is not made)."""

    api_key: str
    base_url: str = ""
    timeout: float = 15.0
    attempts: int = 3
    backoff_s: float = 1.0
    spend: Callable[[], bool] = lambda: True
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    name = ""
    licence = ""
    default_url = ""

    def search(
        self, query: str, *, orientation: str, per_page: int = 5, min_short_side: int = 720
    ) -> list[StockHit]:
        """Videos for `query` ("landscape" or "portrait"), best first, each with the file to download:
        the smallest one at least `min_short_side` pixels on its short side, else the largest."""
        raise NotImplementedError

    def _get(self, url: str, *, params: dict, headers: dict | None = None) -> dict:
        def attempt() -> dict:
            if not self.spend():
                raise MediaError(f"{self.name}: this key's request budget is spent for now")
            try:
                response = requests.get(url, params=params, headers=headers or {}, timeout=self.timeout)
            except requests.Timeout as error:
                raise MediaError(
                    f"{self.name} did not answer within {self.timeout:.0f} s", permanent=False
                ) from error
            except requests.ConnectionError as error:
                raise MediaError(f"cannot reach {self.name}: {error}", permanent=False) from error
            if response.status_code == 429:
                self.sleep(_retry_after(response))
                raise MediaError(f"{self.name} limits the requests (HTTP 429)", permanent=False)
            if response.status_code >= 500:
                raise MediaError(f"{self.name} is unavailable (HTTP {response.status_code})", permanent=False)
            if response.status_code >= 400:
                raise MediaError(
                    f"{self.name} refused the search (HTTP {response.status_code}): {response.text[:200]}"
                )
            try:
                data = response.json()
            except ValueError as error:
                raise MediaError(f"{self.name} answered non-JSON: {response.text[:120]!r}") from error
            if not isinstance(data, dict):
                raise MediaError(f"{self.name} answered a {type(data).__name__}, not an object")
            return data

        return with_retries(
            attempt, attempts=self.attempts, backoff_s=self.backoff_s, service=self.name, sleep=self.sleep
        )


class PexelsProvider(StockProvider):
    name = "pexels"
    licence = "Pexels License"
    default_url = "https://api.pexels.com"

    def search(
        self, query: str, *, orientation: str, per_page: int = 5, min_short_side: int = 720
    ) -> list[StockHit]:
        data = self._get(
            f"{(self.base_url or self.default_url).rstrip('/')}/videos/search",
            params={"query": query, "orientation": orientation, "per_page": per_page, "size": "medium"},
            headers={"Authorization": self.api_key},
        )
        hits = []
        for video in data.get("videos") or []:
            if not isinstance(video, dict):
                continue
            files = [
                (f.get("width") or 0, f.get("height") or 0, f.get("link") or "")
                for f in video.get("video_files") or []
                if isinstance(f, dict) and f.get("file_type") == "video/mp4"
            ]
            chosen = _pick_file(files, min_short_side)
            if chosen is None:
                continue
            width, height, link = chosen
            user = video.get("user") if isinstance(video.get("user"), dict) else {}
            page_url = str(video.get("url") or "")
            hits.append(
                StockHit(
                    provider=self.name,
                    external_id=str(video.get("id")),
                    download_url=link,
                    page_url=page_url,
                    author=str(user.get("name") or ""),
                    title=_title_from_page(page_url),
                    tags=[query.lower()],
                    duration_s=float(video.get("duration") or 0),
                    width=width,
                    height=height,
                    thumbnail_url=str(video.get("image") or ""),
                    licence=self.licence,
                )
            )
        return hits


class PixabayProvider(StockProvider):
    name = "pixabay"
    licence = "Pixabay Content License"
    default_url = "https://pixabay.com"

    def search(
        self, query: str, *, orientation: str, per_page: int = 5, min_short_side: int = 720
    ) -> list[StockHit]:
        # Pixabay's video search has no orientation filter: the sizes of the files tell.
        data = self._get(
            f"{(self.base_url or self.default_url).rstrip('/')}/api/videos/",
            params={
                "key": self.api_key,
                "q": query[:100],
                "per_page": max(3, min(200, per_page * 2)),
                "safesearch": "true",
            },
        )
        hits = []
        for video in data.get("hits") or []:
            if not isinstance(video, dict) or not isinstance(video.get("videos"), dict):
                continue
            files = [
                (f.get("width") or 0, f.get("height") or 0, f.get("url") or "")
                for f in video["videos"].values()
                if isinstance(f, dict)
            ]
            chosen = _pick_file(files, min_short_side)
            if chosen is None:
                continue
            width, height, link = chosen
            if (width >= height) != (orientation == "landscape"):
                continue
            medium = video["videos"].get("medium") if isinstance(video["videos"].get("medium"), dict) else {}
            page_url = str(video.get("pageURL") or "")
            tags = [tag.strip().lower() for tag in str(video.get("tags") or "").split(",") if tag.strip()]
            hits.append(
                StockHit(
                    provider=self.name,
                    external_id=str(video.get("id")),
                    download_url=link,
                    page_url=page_url,
                    author=str(video.get("user") or ""),
                    title=_title_from_page(page_url) or ", ".join(tags),
                    tags=tags,
                    duration_s=float(video.get("duration") or 0),
                    width=width,
                    height=height,
                    thumbnail_url=str(medium.get("thumbnail") or ""),
                    licence=self.licence,
                )
            )
            if len(hits) == per_page:
                break
        return hits


PROVIDERS: dict[str, str] = {
    "pexels": "media_engine.stock.PexelsProvider",
    "pixabay": "media_engine.stock.PixabayProvider",
}


def provider_class(name: str) -> type[StockProvider]:
    if name not in PROVIDERS:
        raise MediaError(f"unknown stock provider {name!r} (known: {', '.join(sorted(PROVIDERS))})")
    module, _, attribute = PROVIDERS[name].rpartition(".")
    return getattr(importlib.import_module(module), attribute)


def download(url: str, out_path: Path, *, max_bytes: int, timeout: float = 60.0) -> str:
    """Stream `url` to `out_path` (at most `max_bytes`); returns the file's SHA-256."""
    digest = hashlib.sha256()
    written = 0
    try:
        with requests.get(url, stream=True, timeout=timeout) as response:
            if response.status_code == 429 or response.status_code >= 500:
                raise MediaError(f"the stock download failed (HTTP {response.status_code})", permanent=False)
            if response.status_code >= 400:
                raise MediaError(f"the stock download was refused (HTTP {response.status_code})")
            with open(out_path, "wb") as handle:
                for chunk in response.iter_content(DOWNLOAD_CHUNK):
                    written += len(chunk)
                    if written > max_bytes:
                        raise MediaError(f"the stock file is larger than {max_bytes} bytes")
                    digest.update(chunk)
                    handle.write(chunk)
    except requests.RequestException as error:
        out_path.unlink(missing_ok=True)
        raise MediaError(f"the stock download failed: {error}", permanent=False) from error
    except MediaError:
        out_path.unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def _pick_file(files: list[tuple[int, int, str]], min_short_side: int) -> tuple[int, int, str] | None:
    usable = [(w, h, link) for w, h, link in files if link.startswith(("https://", "http://")) and w and h]
    if not usable:
        return None
    big_enough = [f for f in usable if min(f[0], f[1]) >= min_short_side]
    if big_enough:
        return min(big_enough, key=lambda f: f[0] * f[1])
    return max(usable, key=lambda f: f[0] * f[1])


def _title_from_page(page_url: str) -> str:
    """Pexels and Pixabay page addresses end in the video's title: .../video/ocean-waves-at-dusk-123/."""
    slug = page_url.rstrip("/").rpartition("/")[2]
    words = [word for word in slug.split("-") if word and not word.isdigit()]
    return " ".join(words)


def _retry_after(response: requests.Response) -> float:
    try:
        return max(0.0, min(MAX_RETRY_AFTER_S, float(response.headers.get("Retry-After", "0"))))
    except ValueError:
        return 0.0
