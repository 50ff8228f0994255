"""What a stored file is, judged by its first bytes rather than its name.

Stored files are sent to browsers with the type found here, so a file whose bytes are not the audio,
video or picture its name claims (an `x.html` renamed `x.png`) is never served as something a
browser would run.
"""

HEAD_BYTES = 64  # enough for every signature below, the Matroska DocType included

SUBTITLE_SUFFIXES = (".srt", ".ass", ".vtt")


def media_type(head: bytes) -> str | None:
    """The MIME type of a PNG, JPEG or WebP picture, WAV, MP3, M4A, Ogg or FLAC audio, or MP4, MOV,
    WebM or Matroska video from its first HEAD_BYTES bytes; None for anything else."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska, or WebM by its DocType
        return "video/webm" if b"webm" in head[:HEAD_BYTES] else "video/x-matroska"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"  # an ID3 tag, or an MPEG audio frame's sync word
    return None


def is_subtitle_text(name: str, head: bytes) -> bool:
    """An SRT, ASS or WebVTT file: named so, and text (no NUL byte) as far as it was read."""
    return name.lower().endswith(SUBTITLE_SUFFIXES) and b"\x00" not in head
