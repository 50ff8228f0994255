"""TTS backends that call a service: a SeedVC voice-cloning server, Azure Speech, Edge.

All three share one policy: a per-attempt timeout (options["timeout"], 60 s), retries with
exponential back-off on timeouts, connection errors, 429 and 5xx (options["retries"]
attempts in all, 3; options["backoff"], 1 s, doubling), and a check that what came back
is audio before anything is written. 4xx answers and non-audio replies are permanent
errors: retrying cannot fix a wrong key or a server that answers with an HTML page.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import mimetypes
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import requests

from . import ffmpeg, words
from .errors import MediaError, with_retries
from .sentences import TimedWord
from .tts import TTSBackend, VoiceSpec

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_ATTEMPTS = 3
DEFAULT_BACKOFF_S = 1.0

# A neural voice per language for Azure and Edge when the Voice row names none.
DEFAULT_NEURAL_VOICES = {
    "zh-cn": "zh-CN-XiaoxiaoNeural",
    "zh-tw": "zh-TW-HsiaoChenNeural",
    "zh-hk": "zh-HK-HiuMaanNeural",
    "en-us": "en-US-AriaNeural",
    "en-gb": "en-GB-SoniaNeural",
    "ja-jp": "ja-JP-NanamiNeural",
    "ko-kr": "ko-KR-SunHiNeural",
    "fr-fr": "fr-FR-DeniseNeural",
    "de-de": "de-DE-KatjaNeural",
    "es-es": "es-ES-ElviraNeural",
    "pt-br": "pt-BR-FranciscaNeural",
    "it-it": "it-IT-ElsaNeural",
    "ru-ru": "ru-RU-SvetlanaNeural",
    "vi-vn": "vi-VN-HoaiMyNeural",
    "th-th": "th-TH-PremwadeeNeural",
}
PRIMARY_LANGUAGE_DEFAULTS = {
    "zh": "zh-cn",
    "en": "en-us",
    "ja": "ja-jp",
    "ko": "ko-kr",
    "fr": "fr-fr",
    "de": "de-de",
    "es": "es-es",
    "pt": "pt-br",
    "it": "it-it",
    "ru": "ru-ru",
    "vi": "vi-vn",
    "th": "th-th",
}


class HttpBackendMixin:
    """Timeout, retry and audio-check settings read from a backend's options."""

    options: dict

    @property
    def timeout(self) -> float:
        return float(self.options.get("timeout", DEFAULT_TIMEOUT_S))

    @property
    def attempts(self) -> int:
        return max(1, int(self.options.get("retries", DEFAULT_ATTEMPTS)))

    @property
    def backoff(self) -> float:
        return float(self.options.get("backoff", DEFAULT_BACKOFF_S))

    def post_for_audio(self, url: str, *, service: str, **request_kwargs) -> bytes:
        """POST with retries; the body of the first 2xx answer."""
        return with_retries(
            lambda: post_once(url, service=service, timeout=self.timeout, **request_kwargs),
            attempts=self.attempts,
            backoff_s=self.backoff,
            service=service,
        )


class SeedVCBackend(HttpBackendMixin, TTSBackend):
    """A SeedVC voice-cloning TTS server.

    Request: POST multipart/form-data to options["url"] (e.g. http://gpu-host:8000/tts) with
    the fields `text`, `language`, `speed`, any extra fields of options["form"], and the
    file `reference` (the voice's reference recording). Reply: the audio, WAV preferred.
    """

    needs_reference = True

    def synthesize_sentence(self, text: str, *, voice: VoiceSpec, speed: float, out_path: Path) -> None:
        url = self.options.get("url")
        if not url:
            raise MediaError("SeedVC TTS needs the server URL (options['url'])")
        if voice.reference_path is None or not Path(voice.reference_path).is_file():
            raise MediaError(f"voice {voice.name!r} has no reference audio, which SeedVC needs")
        reference = Path(voice.reference_path)
        content_type = mimetypes.guess_type(reference.name)[0] or "application/octet-stream"
        form = {
            "text": text,
            "language": voice.language,
            "speed": f"{speed:.2f}",
            **{key: str(value) for key, value in self.options.get("form", {}).items()},
        }
        # Bytes, not an open file: every retry must send the whole recording again.
        files = {"reference": (reference.name, reference.read_bytes(), content_type)}
        audio = self.post_for_audio(url, service="SeedVC TTS", data=form, files=files)
        write_audio(audio, out_path, service="SeedVC TTS")


class AzureBackend(HttpBackendMixin, TTSBackend):
    """Azure Speech text-to-speech over REST (no SDK): SSML in, 24 kHz 16-bit WAV out.

    The REST endpoint answers with audio only: word boundaries come only through the Speech
    SDK's websocket, so Azure narrations have no word times (karaoke captions say so).

    options: key, region (or endpoint, which overrides the regional URL), voice (used when
    the Voice row names none), timeout, retries, backoff.
    """

    OUTPUT_FORMAT = "riff-24khz-16bit-mono-pcm"

    def synthesize_sentence(self, text: str, *, voice: VoiceSpec, speed: float, out_path: Path) -> None:
        key = self.options.get("key")
        if not key:
            raise MediaError("Azure TTS needs a subscription key (options['key'])")
        endpoint = self.options.get("endpoint")
        if not endpoint:
            region = self.options.get("region")
            if not region:
                raise MediaError("Azure TTS needs a region (options['region']) or an endpoint")
            endpoint = f"https://{region}.tts.speech.microsoft.com/cognitiveservices/v1"
        name = voice.name or self.options.get("voice") or default_neural_voice(voice.language)
        headers = {
            "Ocp-Apim-Subscription-Key": key,
            "Content-Type": "application/ssml+xml",
            "X-Microsoft-OutputFormat": self.OUTPUT_FORMAT,
            "User-Agent": "BatchVideo",
        }
        body = azure_ssml(text, voice_name=name, language=voice.language, speed=speed).encode("utf-8")
        audio = self.post_for_audio(endpoint, service="Azure TTS", data=body, headers=headers)
        write_audio(audio, out_path, service="Azure TTS")


class EdgeBackend(HttpBackendMixin, TTSBackend):
    """Microsoft Edge's read-aloud voices through the edge-tts library (MP3, converted to WAV).

    options: voice (used when the Voice row names none), proxy, timeout, retries, backoff.
    The service's WordBoundary events give each word's time.
    """

    word_source = words.EDGE_SOURCE

    def synthesize_sentence(
        self, text: str, *, voice: VoiceSpec, speed: float, out_path: Path
    ) -> list[TimedWord]:
        name = voice.name or self.options.get("voice") or default_neural_voice(voice.language)
        rate = prosody_rate(speed)
        audio, boundaries = with_retries(
            lambda: self._fetch_once(text, name, rate),
            attempts=self.attempts,
            backoff_s=self.backoff,
            service="Edge TTS",
        )
        write_audio(audio, out_path, service="Edge TTS")
        return words.from_edge_boundaries(boundaries)

    def _fetch_once(self, text: str, voice_name: str, rate: str) -> tuple[bytes, list[dict]]:
        import aiohttp
        import edge_tts
        from edge_tts import exceptions

        async def fetch() -> tuple[bytes, list[dict]]:
            communicate = edge_tts.Communicate(
                text,
                voice_name,
                rate=rate,
                proxy=self.options.get("proxy"),
                boundary="WordBoundary",
                connect_timeout=max(1, round(self.timeout)),
                receive_timeout=max(1, round(self.timeout)),
            )
            chunks: list[bytes] = []
            boundaries: list[dict] = []
            async for chunk in communicate.stream():
                if chunk["type"] == "audio":
                    chunks.append(chunk["data"])
                elif chunk["type"] == "WordBoundary":
                    boundaries.append(chunk)
            return b"".join(chunks), boundaries

        try:
            return run_coroutine(fetch(), timeout=self.timeout)
        except ValueError as error:  # edge-tts validates the voice name and rate itself
            raise MediaError(f"Edge TTS rejected the request: {error}") from error
        except exceptions.NoAudioReceived as error:
            message = f"Edge TTS sent no audio for voice {voice_name!r}: check the voice name"
            raise MediaError(message) from error
        except TimeoutError as error:
            message = f"Edge TTS did not answer within {self.timeout:.0f} s"
            raise MediaError(message, permanent=False) from error
        except aiohttp.ClientResponseError as error:
            permanent = 400 <= error.status < 500 and error.status != 429
            message = f"Edge TTS answered HTTP {error.status}: {error.message}"
            raise MediaError(message, permanent=permanent) from error
        except (aiohttp.ClientError, OSError, exceptions.EdgeTTSException) as error:
            raise MediaError(f"cannot reach Edge TTS: {error}", permanent=False) from error


def default_neural_voice(language: str) -> str:
    code = language.strip().lower().replace("_", "-")
    found = DEFAULT_NEURAL_VOICES.get(code) or DEFAULT_NEURAL_VOICES.get(
        PRIMARY_LANGUAGE_DEFAULTS.get(code.split("-")[0], "")
    )
    if found is None:
        raise MediaError(f"no default neural voice for language {language!r}: set the voice name")
    return found


def prosody_rate(speed: float) -> str:
    """Speech speed as an SSML prosody rate: 1.0 -> "+0%", 1.25 -> "+25%", 0.8 -> "-20%"."""
    return f"{round((speed - 1) * 100):+d}%"


def azure_ssml(text: str, *, voice_name: str, language: str, speed: float) -> str:
    return (
        f"<speak version='1.0' xmlns='http://www.w3.org/2001/10/synthesis' xml:lang={quoteattr(language)}>"
        f"<voice name={quoteattr(voice_name)}><prosody rate={quoteattr(prosody_rate(speed))}>"
        f"{escape(text)}</prosody></voice></speak>"
    )


def post_once(url: str, *, service: str, timeout: float, **request_kwargs) -> bytes:
    """One POST; MediaError with `permanent` set by what a retry could change."""
    try:
        response = requests.post(url, timeout=timeout, **request_kwargs)
    except requests.Timeout as error:
        raise MediaError(f"{service} did not answer within {timeout:.0f} s", permanent=False) from error
    except requests.ConnectionError as error:
        raise MediaError(f"cannot reach {service} at {url}: {error}", permanent=False) from error
    except requests.RequestException as error:
        raise MediaError(f"bad request to {service} at {url}: {error}") from error
    status = response.status_code
    if status < 400:
        return response.content
    detail = _snippet(response)
    if status in (401, 403):
        message = f"{service} refused the request as unauthorised (HTTP {status}): check the key."
        raise MediaError(f"{message} {detail}".strip())
    if status == 429 or status >= 500:
        raise MediaError(f"{service} is unavailable (HTTP {status}). {detail}", permanent=False)
    raise MediaError(f"{service} rejected the request (HTTP {status}). {detail}")


def write_audio(data: bytes, out_path: Path, *, service: str) -> None:
    """Check that `data` is audio (ffprobe finds an audio stream) and write it as WAV."""
    out_path = Path(out_path)
    if len(data) < 44:  # not even a WAV header
        raise MediaError(f"{service} returned no audio ({len(data)} bytes)")
    download = out_path.with_name(out_path.name + ".download")
    download.write_bytes(data)
    try:
        try:
            info = ffmpeg.probe(download)
        except MediaError as error:
            raise MediaError(f"{service} returned something that is not audio: {_peek(data)}") from error
        if not any(stream.get("codec_type") == "audio" for stream in info.get("streams", [])):
            raise MediaError(f"{service} returned a file without an audio stream: {_peek(data)}")
        if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
            download.replace(out_path)
        else:  # MP3 from Edge, or whatever a SeedVC server prefers
            ffmpeg.run(["-i", download, "-vn", "-c:a", "pcm_s16le", "-f", "wav", out_path], timeout=120)
    finally:
        download.unlink(missing_ok=True)


def run_coroutine(coroutine, *, timeout: float):
    """Run a coroutine to completion from synchronous code, even inside a running loop
    (a worker thread owns the new loop), giving up after `timeout` seconds in all."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, asyncio.wait_for(coroutine, timeout)).result()


def _snippet(response: requests.Response) -> str:
    text = response.text.strip().replace("\n", " ") if response.content else ""
    return text[:200]


def _peek(data: bytes) -> str:
    return repr(data[:60])
