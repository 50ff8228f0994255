"""Stock footage for the segments: the clip library searched by a segment's keywords (PostgreSQL full-text
search over titles, tags and descriptions; word matching elsewhere), then Pexels and Pixabay where keys
are set. Their finds are downloaded once into the library (with source, author, page, licence and the
search that found them) and searched like any other clip. Also where a clip plays from (its longest
shot, past any fade-in) and the credits its licence asks for.
"""

import hashlib
import logging
import tempfile
import time
from dataclasses import dataclass, field
from functools import reduce
from operator import or_
from pathlib import Path

from django.conf import settings
from django.core.cache import caches
from django.core.files import File
from django.db import IntegrityError, connection, transaction

from jobs.models import Job, Orientation, StockClip
from media_engine import ffmpeg, scenes, stock
from media_engine.errors import MediaError

logger = logging.getLogger(__name__)

PROVIDER_ORDER = ("pexels", "pixabay")
# Clips named in these licences are credited in the job's description (what their terms ask for or
# appreciate); a clip without a provider is credited when its row names an author.
PROVIDER_SOURCES = {"pexels": "Pexels", "pixabay": "Pixabay"}


@dataclass
class CandidateSearch:
    """One storyboard's search: providers that failed are not asked again for its other segments."""

    team: object = None  # whose library clips the search may use, with the shared ones
    orientation: str = "landscape"
    remote: bool = True
    notes: list[str] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)


# ---------------------------------------------------------------- the library


def library_search(*, terms: list[str], team=None, limit: int = 10) -> list[tuple[int, float]]:
    """(clip id, score) of the library clips a job of `team` may use that match `terms`, best first."""
    words = _words(terms)
    if not words:
        return []
    clips = StockClip.objects.usable_in(team)
    if connection.vendor == "postgresql":
        return _postgres_search(clips, terms, words, limit)
    return _word_search(clips, words, limit)


def _postgres_search(clips, terms: list[str], words: list[str], limit: int) -> list[tuple[int, float]]:
    from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector

    # "simple": no stemming and no stop words, so any language's tags match as written.
    vector = (
        SearchVector("tags", weight="A", config="simple")
        + SearchVector("title", weight="B", config="simple")
        + SearchVector("description", "search", weight="C", config="simple")
    )
    query = reduce(
        or_, [SearchQuery(text, search_type="plain", config="simple") for text in [*terms, *words]]
    )
    ranked = (
        clips.annotate(rank=SearchRank(vector, query))
        .filter(rank__gt=0)
        .order_by("-rank", "id")
        .values_list("id", "rank")[:limit]
    )
    return [(clip_id, round(float(rank), 6)) for clip_id, rank in ranked]


def _word_search(clips, words: list[str], limit: int) -> list[tuple[int, float]]:
    """The fallback where there is no full-text search (SQLite): a tag naming a word counts most."""
    scored = []
    for clip in clips.only("id", "title", "tags", "description", "search"):
        tags = clip.tag_set
        text = f"{clip.title} {clip.description} {clip.search}".lower()
        score = sum(
            1.0 if word in tags else 0.5 if word in text or any(word in tag for tag in tags) else 0.0
            for word in words
        )
        if score:
            scored.append((clip.pk, score))
    scored.sort(key=lambda pair: (-pair[1], pair[0]))
    return scored[:limit]


def _words(terms: list[str]) -> list[str]:
    words: list[str] = []
    for term in terms:
        for word in term.lower().replace(",", " ").split():
            if len(word) > 1 and word not in words:
                words.append(word)
    return words


# ---------------------------------------------------------------- candidates per segment


def segment_candidates(
    *, job: Job, keywords: list[list[str]], remote: bool
) -> tuple[list[list[dict]], list[str]]:
    """Per segment, the clips that fit its keywords, best first ([{id, score}]), and notes for the
    execution's detail (a provider that failed or ran out of budget). Providers are asked only with
    `remote`, for a segment the library has fewer than STOCK_CANDIDATES clips for."""
    search = CandidateSearch(
        team=job.team,
        remote=remote,
        orientation="portrait" if job.orientation == Orientation.VERTICAL else "landscape",
    )
    return [_candidates(terms, search) for terms in keywords], search.notes


def _candidates(terms: list[str], search: CandidateSearch) -> list[dict]:
    wanted = settings.STOCK_CANDIDATES
    found = library_search(terms=terms, team=search.team, limit=wanted)
    if search.remote and terms and len(found) < wanted:
        for term in terms[:2]:
            if _fetch_remote(term, search, wanted - len(found)):
                found = library_search(terms=terms, team=search.team, limit=wanted)
            if len(found) >= wanted:
                break
    return [{"id": clip_id, "score": score} for clip_id, score in found]


def _fetch_remote(term: str, search: CandidateSearch, count: int) -> int:
    """Clips for `term` from the configured providers into the library; how many were added or found."""
    added = 0
    for name in PROVIDER_ORDER:
        config = settings.STOCK_PROVIDERS.get(name) or {}
        if not config.get("key") or name in search.failed or added >= count:
            continue
        provider = provider_for(name)
        try:
            hits = provider.search(term, orientation=search.orientation, per_page=count)
        except MediaError as error:
            search.failed.add(name)
            search.notes.append(f"{name} search: {error}")
            logger.warning("stock search on %s failed: %s", name, error)
            continue
        for hit in hits[: count - added]:
            try:
                clip_from_hit(hit, search=term)
            except MediaError as error:
                search.notes.append(f"{name} download: {error}")
                logger.warning("stock download from %s failed: %s", name, error)
                continue
            added += 1
    return added


def provider_for(name: str) -> stock.StockProvider:
    config = settings.STOCK_PROVIDERS[name]
    return stock.provider_class(name)(
        api_key=config["key"],
        base_url=config.get("base_url") or "",
        timeout=settings.STOCK_TIMEOUT_S,
        attempts=settings.STOCK_ATTEMPTS,
        backoff_s=settings.STOCK_BACKOFF_S,
        spend=lambda: budget_spend(
            name,
            config["key"],
            budget=int(config.get("budget", 100)),
            window_s=int(config.get("window_s", 3600)),
        ),
    )


def budget_spend(provider: str, key: str, *, budget: int, window_s: int) -> bool:
    """Count one request against the key's budget for the current window; False once it is spent.
    The count lives in the shared cache, so every worker on every host spends the same budget."""
    cache = caches["cluster"]
    window = int(time.time() // window_s)
    name = f"stock-budget:{provider}:{hashlib.sha256(key.encode()).hexdigest()[:16]}:{window}"
    cache.add(name, 0, timeout=window_s + 60)
    try:
        used = cache.incr(name)
    except ValueError:  # expired between add and incr
        cache.set(name, 1, timeout=window_s + 60)
        used = 1
    return used <= budget


def clip_from_hit(hit: stock.StockHit, *, search: str) -> StockClip:
    """The library clip for a provider's video: the one downloaded before, else downloaded now. The same
    file found under another id (the same SHA-256) is not stored twice."""
    existing = StockClip.objects.filter(provider=hit.provider, external_id=hit.external_id).first()
    if existing is not None:
        return existing
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{hit.provider}-{hit.external_id}.mp4"
        digest = stock.download(
            hit.download_url,
            path,
            max_bytes=settings.STOCK_MAX_BYTES,
            timeout=max(60.0, settings.STOCK_TIMEOUT_S),
        )
        same_file = StockClip.objects.filter(sha256=digest).first()
        if same_file is not None:
            return same_file
        clip = StockClip(
            owner=None,
            title=hit.title[:255],
            tags=",".join([*hit.tags, search.lower()])[:255],
            source=PROVIDER_SOURCES.get(hit.provider, hit.provider),
            licence=hit.licence,
            provider=hit.provider,
            external_id=hit.external_id[:64],
            author=hit.author[:255],
            page_url=hit.page_url[:500],
            search=search[:255],
            sha256=digest,
        )
        try:
            with transaction.atomic():
                return clip_store_file(clip=clip, path=path)
        except IntegrityError:  # another worker stored it meanwhile
            return StockClip.objects.get(provider=hit.provider, external_id=hit.external_id)


# ---------------------------------------------------------------- the clip's file, shots and credit


def clip_store_file(*, clip: StockClip, path: Path) -> StockClip:
    """Store a video file as the clip's (under the file's own name) with the duration and size ffprobe
    reads from it, its shots, a thumbnail at its best shot and its SHA-256, and save the clip."""
    info = ffmpeg.probe(path)
    video = next((s for s in info.get("streams", []) if s.get("codec_type") == "video"), None)
    if video is None:
        raise MediaError(f"{path.name} has no video stream")
    clip.duration_ms = int(float(info["format"]["duration"]) * 1000)
    clip.width, clip.height = int(video.get("width", 0)), int(video.get("height", 0))
    shots = scenes.find_shots(path)
    clip.shots = [[shot.start_ms, shot.end_ms] for shot in shots]
    if not clip.sha256:
        clip.sha256 = _file_sha256(path)
    with tempfile.TemporaryDirectory() as folder:
        thumbnail = _thumbnail(path, shots, Path(folder) / f"{path.stem}.jpg")
        if thumbnail is not None:
            with open(thumbnail, "rb") as handle:
                clip.thumbnail.save(thumbnail.name, File(handle), save=False)
    with open(path, "rb") as handle:
        clip.file.save(path.name, File(handle), save=False)
    clip.save()
    return clip


def clip_start_ms(clip: StockClip, *, path: Path, needed_ms: int) -> int:
    """Where a segment `needed_ms` long plays the clip from (media_engine.scenes); a clip stored before
    its shots were read has them read now, once."""
    if clip.shots is None:
        clip.shots = [[shot.start_ms, shot.end_ms] for shot in scenes.find_shots(path)]
        StockClip.objects.filter(pk=clip.pk).update(shots=clip.shots)
    shots = [scenes.Shot(int(start), int(end)) for start, end in clip.shots]
    return scenes.clip_start_ms(shots, duration_ms=clip.duration_ms, needed_ms=needed_ms)


def clip_credit(clip: StockClip) -> str:
    """The line a published video's description gives the clip ('' when its licence asks for none and
    nobody is named)."""
    if not clip.author and not clip.provider:
        return ""
    source = PROVIDER_SOURCES.get(clip.provider, clip.source)
    who = f"Video by {clip.author}" if clip.author else "Video"
    where = f" on {source}" if source else ""
    link = f": {clip.page_url}" if clip.page_url else ""
    licence = f" ({clip.licence})" if clip.licence else ""
    return f"{who}{where}{licence}{link}"


def _thumbnail(path: Path, shots: list[scenes.Shot], out_path: Path) -> Path | None:
    from media_engine import compose

    at_s = (shots and max(shots, key=lambda shot: shot.length_ms).start_ms / 1000 + 0.5) or 0.5
    try:
        return compose.extract_frame(path, at_s, out_path)
    except MediaError as error:
        logger.warning("no thumbnail for %s: %s", path.name, error)
        return None


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
