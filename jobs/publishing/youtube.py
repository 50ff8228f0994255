"""The YouTube Data API, as publishing uses it: a client built from the bundled static discovery
document (endpoint from settings), the resumable video upload, thumbnails.set, captions.insert,
what each call costs, and what an error means for the publication (`YouTubeError.kind`).
"""

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import google_auth_httplib2
import httplib2
from django.conf import settings
from google.auth.exceptions import RefreshError, TransportError
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaFileUpload

from accounts.channels import REVOKED
from jobs.workitems import backoff_s

logger = logging.getLogger(__name__)

# Units each call costs a project's daily budget (YouTube Data API quota calculator).
QUOTA_COSTS = {"videos.insert": 1600, "thumbnails.set": 50, "captions.insert": 400}
# 403 reasons that mean the project's daily budget is spent; 400 uploadLimitExceeded is the channel's.
QUOTA_REASONS = {"quotaExceeded", "dailyLimitExceeded", "uploadLimitExceeded"}
RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "backendError"}


class YouTubeError(Exception):
    """What a call's failure means: kind is "quota" (wait for the next quota day), "retry" (back off
    and try again), "revoked" (the channel must be connected again) or "permanent"."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def youtube_client(credentials) -> Any:
    """A youtube v3 client over httplib2, authorised by `credentials` (refreshed on first use)."""
    http = httplib2.Http(timeout=settings.YOUTUBE_TIMEOUT_S, ca_certs=settings.YOUTUBE_CA_BUNDLE or None)
    # 308 is "resume incomplete" in the upload protocol, not a redirect (as googleapiclient's build_http says).
    http.redirect_codes = http.redirect_codes - {308}
    return build(
        "youtube",
        "v3",
        http=google_auth_httplib2.AuthorizedHttp(credentials, http=http),
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": settings.YOUTUBE_API_ENDPOINT},
    )


def watch_url(video_id: str) -> str:
    return f"https://www.youtube.com/watch?v={video_id}"


def _reason(error) -> str:
    """The first `reason` of a Google error reply ("quotaExceeded", ...), or ""."""
    try:
        body = json.loads(error.content.decode("utf-8", "replace"))
        errors = body.get("error", {}).get("errors") or []
        return str(errors[0].get("reason", "")) if errors else str(body.get("error", {}).get("status", ""))
    except (ValueError, AttributeError, TypeError):
        return ""


def youtube_error(error: BaseException) -> YouTubeError:
    """A library or transport error as a YouTubeError, in words an operator can act on."""
    if isinstance(error, YouTubeError):
        return error
    if isinstance(error, RefreshError):
        if "invalid_grant" in str(error):
            return YouTubeError(REVOKED, kind="revoked")
        if getattr(error, "retryable", False):
            return YouTubeError(f"Google's token endpoint is unavailable: {error}", kind="retry")
        return YouTubeError(
            f"Google refused the OAuth client (check YOUTUBE_CLIENT_ID and YOUTUBE_CLIENT_SECRET): {error}",
            kind="permanent",
        )
    if isinstance(error, HttpError):
        status, reason = int(error.resp.status), _reason(error)
        said = f"YouTube answered {status} {reason or error.reason}".strip()
        if reason in QUOTA_REASONS:
            return YouTubeError(f"{said}: the daily quota is spent", kind="quota")
        if status in (429, 408) or status >= 500 or reason in RATE_REASONS:
            return YouTubeError(said, kind="retry")
        if status == 401:
            return YouTubeError(REVOKED, kind="revoked")
        return YouTubeError(said, kind="permanent")
    if isinstance(error, (OSError, httplib2.HttpLib2Error, TransportError)):
        return YouTubeError(f"connection to YouTube failed: {type(error).__name__}: {error}", kind="retry")
    return YouTubeError(f"unexpected error {type(error).__name__}: {error}", kind="retry")


def _transient(error: BaseException) -> bool:
    return youtube_error(error).kind == "retry"


class ChunkedFileUpload(MediaFileUpload):
    """Sends each chunk as bytes read from the file, not as a stream: when a connection drops, httplib2
    sends the request once more by itself, and a stream the first try read to its end would go out as an
    empty body, the upload then hanging until the timeout."""

    def has_stream(self) -> bool:
        return False


def _upload_status(request, upload_uri: str, size: int) -> tuple[int, dict | None]:
    """Ask a stored upload session what it has: (bytes it holds, the video once complete). A session
    that expired answers 404/410: (-1, None), and the upload starts over."""
    response, content = request.http.request(
        upload_uri, "PUT", headers={"Content-Range": f"bytes */{size}", "Content-Length": "0"}
    )
    if response.status in (200, 201):
        return size, json.loads(content)
    if response.status == 308:
        received = response.get("range", "")
        return (int(received.rsplit("-", 1)[1]) + 1 if received else 0), None
    if response.status in (404, 410):
        return -1, None
    raise HttpError(response, content, uri=upload_uri)


def upload_video(
    client,
    *,
    path: Path,
    body: dict,
    upload_uri: str = "",
    on_session: Callable[[str, int], None] = lambda uri, sent: None,
) -> dict:
    """videos.insert with the resumable protocol: returns the video resource.

    A dropped connection or a 5xx mid-way is resumed in place (the library asks the session which byte
    it has and goes on from there), YOUTUBE_UPLOAD_RETRIES times at most. `upload_uri` resumes a session
    an earlier attempt started; `on_session(uri, bytes_sent)` records the session as it goes.
    """
    media = ChunkedFileUpload(
        str(path), mimetype="video/mp4", chunksize=settings.YOUTUBE_UPLOAD_CHUNK_BYTES, resumable=True
    )
    request = client.videos().insert(part="snippet,status", body=body, media_body=media)
    if upload_uri:
        received, video = _upload_status(request, upload_uri, media.size())
        if video is not None:
            return video
        if received >= 0:
            request.resumable_uri, request.resumable_progress = upload_uri, received
    drops = 0
    response = None
    while response is None:
        try:
            _progress, response = request.next_chunk()
        except Exception as error:
            if isinstance(error, HttpError) and error.resp.status in (404, 410) and request.resumable_uri:
                request.resumable_uri, request.resumable_progress = None, 0  # the session expired: start over
                on_session("", 0)
                continue
            if not _transient(error) or drops >= settings.YOUTUBE_UPLOAD_RETRIES:
                raise
            drops += 1
            logger.warning(
                "upload of %s: %s; resuming (%d of %d)",
                path.name,
                youtube_error(error),
                drops,
                settings.YOUTUBE_UPLOAD_RETRIES,
            )
            time.sleep(backoff_s(settings.YOUTUBE_UPLOAD_RETRY_WAIT_S, drops, max_s=60))
        if request.resumable_uri:
            on_session(request.resumable_uri, request.resumable_progress)
    return response


def set_thumbnail(client, *, video_id: str, path: Path) -> None:
    client.thumbnails().set(
        videoId=video_id, media_body=MediaFileUpload(str(path), mimetype="image/jpeg")
    ).execute()


def insert_caption(client, *, video_id: str, path: Path, language: str, name: str) -> dict:
    body = {"snippet": {"videoId": video_id, "language": language, "name": name, "isDraft": False}}
    media = MediaFileUpload(str(path), mimetype="application/octet-stream")
    return client.captions().insert(part="snippet", body=body, media_body=media).execute()
