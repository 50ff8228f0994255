"""The signed-files view: a stored file served to whoever holds an unexpired `/files/` link that
`accounts.storage` signed (local storage; S3 hands out its own presigned links); the admin's team picker."""

import re
from pathlib import PurePosixPath

from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts import teams
from accounts.storage import signed_key
from media_engine.filetypes import HEAD_BYTES, is_subtitle_text, media_type

DOWNLOAD_TYPE = "application/octet-stream"
BYTE_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")
# A byte position of more digits is past the end of any file (and int() refuses past 4,300 digits).
POSITION_MAX_DIGITS = 18


def signed_media(request, token: str) -> FileResponse:
    """Serve a locally stored artifact to whoever holds an unexpired signed link.

    Only audio, video and pictures recognised by their bytes, and subtitle text, are shown in the
    browser; anything else is a download of unknown type, so a stored page or script never runs on
    this origin (SecurityMiddleware adds `nosniff`, so browsers keep to the type sent).
    """
    try:
        key = signed_key(token)
    except signing.SignatureExpired as error:
        raise Http404("This link has expired.") from error
    except signing.BadSignature as error:
        raise Http404("This link is not valid.") from error
    if not default_storage.exists(key):
        raise Http404("The file is gone.")
    stored = default_storage.open(key, "rb")
    head = stored.read(HEAD_BYTES)
    stored.seek(0)
    name = PurePosixPath(key).name
    inline_type = media_type(head) or ("text/plain; charset=utf-8" if is_subtitle_text(name, head) else None)
    if inline_type is None:
        return FileResponse(stored, as_attachment=True, filename=name, content_type=DOWNLOAD_TYPE)
    wanted = BYTE_RANGE.match(request.headers.get("Range", "").strip())
    if wanted and any(wanted.groups()):
        return _byte_range(stored, default_storage.size(key), wanted, inline_type)
    response = FileResponse(stored, content_type=inline_type)
    response["Accept-Ranges"] = "bytes"
    return response


def _byte_range(stored, size: int, wanted: re.Match, content_type: str) -> HttpResponse:
    """One byte range of a stored media file (206), so players can seek, e.g. to a segment's `#t=`."""
    first, last = (_position(digits) for digits in wanted.groups())
    if first is not None:
        start, end = first, min(last, size - 1) if last is not None else size - 1
    else:  # "bytes=-N": the last N bytes
        start, end = max(0, size - last), size - 1
    if start > end or start >= size:
        stored.close()
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    stored.seek(start)

    def chunks(left: int = end - start + 1):
        with stored:
            while left > 0:
                chunk = stored.read(min(left, 64 * 1024))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk

    response = StreamingHttpResponse(chunks(), status=206, content_type=content_type)
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    return response


def _position(digits: str) -> int | None:
    """A Range header's byte position; a longer number than any file holds counts as 10**18."""
    if not digits:
        return None
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= POSITION_MAX_DIGITS else 10**POSITION_MAX_DIGITS


@require_POST
@login_required
def team_switch(request) -> HttpResponseRedirect:
    """The admin header's team picker: the admin works in the chosen team from now on."""
    teams.team_switch(request, request.POST.get("team", "").strip())
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("admin:index")
    return HttpResponseRedirect(target)
