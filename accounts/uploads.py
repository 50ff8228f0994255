"""Checks for uploaded files: size, declared content type, and what the bytes really are.

A client's file name is never used: every accepted upload comes back under a generated name whose
extension follows the detected format. Plain functions raising Django's ValidationError, so the
admin can use them as well as the API.
"""

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from PIL import Image, UnidentifiedImageError

from media_engine import ffmpeg
from media_engine.errors import MediaError

MB = 1024 * 1024
IMAGE_MAX_BYTES = 5 * MB
AUDIO_MAX_BYTES = 20 * MB
CLIP_MAX_BYTES = 200 * MB
IMAGE_MAX_PIXELS = 40_000_000
# Declared types that say nothing (curl and some HTTP libraries send them); the bytes decide.
GENERIC_TYPES = {"", "application/octet-stream", "binary/octet-stream"}

IMAGE_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}
IMAGE_TYPES = {"image/png", "image/jpeg", "image/jpg", "image/pjpeg", "image/webp"}

# ffprobe's format_name -> extension. m4a is ffprobe's "mov,mp4,..." family with audio only.
AUDIO_FORMATS = {
    "wav": ".wav",
    "mp3": ".mp3",
    "mov,mp4,m4a,3gp,3g2,mj2": ".m4a",
    "ogg": ".ogg",
    "flac": ".flac",
}
AUDIO_TYPES = {
    "audio/wav",
    "audio/x-wav",
    "audio/wave",
    "audio/vnd.wave",
    "audio/mpeg",
    "audio/mp3",
    "audio/mp4",
    "audio/x-m4a",
    "audio/m4a",
    "audio/aac",
    "audio/ogg",
    "application/ogg",
    "audio/vorbis",
    "audio/opus",
    "audio/flac",
    "audio/x-flac",
}
CLIP_TYPES = {"video/mp4", "video/quicktime", "video/webm", "video/x-matroska", "video/mkv"}
WEBM_CODECS = {"vp8", "vp9", "av1", "opus", "vorbis"}

# The ffprobe demuxers an upload may be read with (`ffprobe -demuxers`; "mov" is the MP4/M4A/MOV one,
# "matroska" also reads WebM). Anything else is refused before ffprobe reads it: an HLS or concat
# playlist would make it open the files it lists.
AUDIO_DEMUXERS = ("wav", "mp3", "mov", "ogg", "flac")
CLIP_DEMUXERS = ("mov", "matroska")
AUDIO_ACCEPTED = "Audio must be WAV, MP3, M4A, Ogg or FLAC with an audio stream."
CLIP_ACCEPTED = "Clips must be MP4, MOV, WebM or Matroska video."


@dataclass(frozen=True)
class CheckedClip:
    path: Path  # a temporary file under a generated name, removed when the context ends
    extension: str


def _check_size(uploaded, limit: int, kind: str) -> None:
    size = getattr(uploaded, "size", None)
    if size is None:
        raise ValidationError("The upload has no size.", code="invalid")
    if size == 0:
        raise ValidationError("The uploaded file is empty.", code="empty")
    if size > limit:
        raise ValidationError(
            f"The {kind} is {size / MB:.1f} MB; at most {limit / MB:g} MB is allowed.", code="too_large"
        )


def _check_declared_type(uploaded, allowed: set[str], kind: str) -> None:
    declared = (getattr(uploaded, "content_type", "") or "").split(";")[0].strip().lower()
    if declared not in allowed and declared not in GENERIC_TYPES:
        raise ValidationError(
            f"Content type {declared!r} is not an accepted {kind} type.", code="content_type"
        )


def _read_all(uploaded) -> bytes:
    uploaded.seek(0)
    data = uploaded.read()
    uploaded.seek(0)
    return data


def check_image(uploaded, *, max_bytes: int = IMAGE_MAX_BYTES) -> ContentFile:
    """A PNG, JPEG or WebP picture Pillow can decode, renamed `<random>.<ext>`."""
    _check_size(uploaded, max_bytes, "picture")
    _check_declared_type(uploaded, IMAGE_TYPES, "picture")
    data = _read_all(uploaded)
    try:
        with Image.open(ContentFile(data)) as picture:
            image_format = picture.format
            if picture.width * picture.height > IMAGE_MAX_PIXELS:
                raise ValidationError(
                    f"The picture is {picture.width}x{picture.height}; at most {IMAGE_MAX_PIXELS} pixels "
                    "are allowed.",
                    code="too_large",
                )
            picture.verify()
        with Image.open(ContentFile(data)) as picture:
            picture.load()  # verify() does not decode; a truncated file only fails here
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        message = "The upload is not a readable PNG, JPEG or WebP picture."
        raise ValidationError(message, code="invalid") from error
    if image_format not in IMAGE_FORMATS:
        raise ValidationError(
            f"{image_format or 'This'} pictures are not accepted; use PNG, JPEG or WebP.", code="format"
        )
    return ContentFile(data, name=f"{uuid.uuid4().hex}{IMAGE_FORMATS[image_format]}")


@contextmanager
def _spooled(uploaded, suffix: str = "") -> Iterator[Path]:
    """The upload as a file on disk (ffprobe needs a path), removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="upload-"))
    path = directory / f"{uuid.uuid4().hex}{suffix}"
    try:
        uploaded.seek(0)
        with open(path, "wb") as out:
            for chunk in uploaded.chunks() if hasattr(uploaded, "chunks") else [uploaded.read()]:
                out.write(chunk)
        uploaded.seek(0)
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _probe(path: Path, kind: str, demuxers: tuple[str, ...], accepted: str) -> dict:
    try:
        return ffmpeg.probe(path, timeout=30, formats=demuxers)
    except MediaError as error:
        message = f"The upload is not a readable {kind} file. {accepted}"
        raise ValidationError(message, code="invalid") from error


def check_audio(uploaded, *, max_bytes: int = AUDIO_MAX_BYTES) -> ContentFile:
    """WAV, MP3, M4A, Ogg or FLAC audio that ffprobe can read, renamed `<random>.<ext>`."""
    _check_size(uploaded, max_bytes, "audio file")
    _check_declared_type(uploaded, AUDIO_TYPES, "audio")
    with _spooled(uploaded) as path:
        info = _probe(path, "audio", AUDIO_DEMUXERS, AUDIO_ACCEPTED)
        data = path.read_bytes()
    streams = info.get("streams", [])
    extension = AUDIO_FORMATS.get(info.get("format", {}).get("format_name", ""))
    # An MP3's cover art shows up as a video stream marked attached_pic: that is fine.
    moving_video = [
        s
        for s in streams
        if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")
    ]
    if extension is None or moving_video or not any(s.get("codec_type") == "audio" for s in streams):
        raise ValidationError(AUDIO_ACCEPTED, code="format")
    return ContentFile(data, name=f"{uuid.uuid4().hex}{extension}")


@contextmanager
def checked_clip(uploaded, *, max_bytes: int | None = None) -> Iterator[CheckedClip]:
    """An MP4/MOV, WebM or Matroska video saved to a temporary file under a generated name."""
    limit = max_bytes or int(getattr(settings, "API_CLIP_MAX_BYTES", CLIP_MAX_BYTES))
    _check_size(uploaded, limit, "clip")
    _check_declared_type(uploaded, CLIP_TYPES, "video")
    with _spooled(uploaded) as spooled:
        info = _probe(spooled, "video", CLIP_DEMUXERS, CLIP_ACCEPTED)
        streams = info.get("streams", [])
        format_name = info.get("format", {}).get("format_name", "")
        if not any(s.get("codec_type") == "video" for s in streams):
            raise ValidationError("The clip has no video stream.", code="format")
        if format_name.startswith("mov,mp4"):
            extension = ".mp4"
        elif format_name == "matroska,webm":
            codecs = {s.get("codec_name") for s in streams}
            extension = ".webm" if codecs <= WEBM_CODECS else ".mkv"
        else:
            raise ValidationError(CLIP_ACCEPTED, code="format")
        try:
            float(info["format"]["duration"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValidationError("The clip has no duration.", code="format") from error
        named = spooled.with_suffix(extension)
        spooled.rename(named)
        yield CheckedClip(path=named, extension=extension)
