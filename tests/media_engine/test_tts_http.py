"""The HTTP TTS backends against local servers started by the tests (never the internet)."""

import asyncio
import io
import json
import math
import struct
import subprocess
import threading
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from media_engine import ffmpeg, tts_http
from media_engine.errors import MediaError
from media_engine.tts import VoiceSpec

FAST = {"timeout": 5, "retries": 3, "backoff": 0.01}
EDGE_WORDS = [
    ("你好", 500_000, 1_500_000),
    ("world", 2_500_000, 2_000_000),
]  # text, offset, duration (100 ns)


def wav_bytes(seconds: float = 0.2, rate: int = 24000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        samples = (int(8000 * math.sin(2 * math.pi * 440 * n / rate)) for n in range(int(seconds * rate)))
        writer.writeframes(b"".join(struct.pack("<h", sample) for sample in samples))
    return buffer.getvalue()


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "audio/wav"
    delay_s: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes


@dataclass
class ScriptedServer:
    """Answers each request with the next scripted Reply (the last one repeats)."""

    replies: list[Reply]
    received: list[Received] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer(replies=[Reply(body=wav_bytes())])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            scripted.received.append(Received(self.path, dict(self.headers), body))
            reply = scripted.replies[min(len(scripted.received), len(scripted.replies)) - 1]
            time.sleep(reply.delay_s)
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests)

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.block_on_close = False  # a handler still sleeping in a timeout test must not block teardown
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    scripted.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield scripted
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def reference(tmp_path: Path) -> Path:
    path = tmp_path / "grandma.wav"
    path.write_bytes(wav_bytes(1.0, 16000))
    return path


def seedvc(server: ScriptedServer, **options) -> tts_http.SeedVCBackend:
    return tts_http.SeedVCBackend({"url": f"{server.url}/tts", **FAST, **options})


def azure(server: ScriptedServer, **options) -> tts_http.AzureBackend:
    return tts_http.AzureBackend(
        {"key": "secret-key", "endpoint": f"{server.url}/cognitiveservices/v1", **FAST, **options}
    )


def multipart(received: Received) -> dict[str, bytes]:
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {received.headers['Content-Type']}\r\n\r\n".encode() + received.body
    )
    return {
        part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
        for part in message.iter_parts()
    }


def say(backend, text: str, voice: VoiceSpec, folder: Path, speed: float = 1.0) -> None:
    backend.synthesize_sentence(text, voice=voice, speed=speed, out_path=folder / "o.wav")


def assert_wav(path: Path) -> None:
    assert path.read_bytes()[:4] == b"RIFF"
    assert ffmpeg.duration(path) > 0.1


# --- SeedVC ----------------------------------------------------------------------------------


def test_seedvc_posts_text_and_reference_and_writes_the_wav(server, reference, tmp_path) -> None:
    voice = VoiceSpec("grandma", "zh-CN", reference)
    seedvc(server, form={"diffusion_steps": 30}).synthesize_sentence(
        "你好，世界", voice=voice, speed=1.2, out_path=tmp_path / "out.wav"
    )

    assert_wav(tmp_path / "out.wav")
    [request] = server.received
    assert request.path == "/tts"
    fields = multipart(request)
    assert fields["text"].decode() == "你好，世界"
    assert fields["speed"] == b"1.20" and fields["language"] == b"zh-CN"
    assert fields["diffusion_steps"] == b"30"
    assert fields["reference"] == reference.read_bytes()
    assert not list(tmp_path.glob("*.download"))


def test_seedvc_retries_a_5xx_and_then_succeeds(server, reference, tmp_path) -> None:
    server.replies = [
        Reply(503, b"busy", "text/plain"),
        Reply(502, b"", "text/plain"),
        Reply(body=wav_bytes()),
    ]
    seedvc(server).synthesize_sentence(
        "hi", voice=VoiceSpec("v", "en-US", reference), speed=1.0, out_path=tmp_path / "out.wav"
    )
    assert_wav(tmp_path / "out.wav")
    assert len(server.received) == 3
    assert all(multipart(request)["reference"] == reference.read_bytes() for request in server.received)


def test_persistent_5xx_is_transient_after_all_attempts(server, reference, tmp_path) -> None:
    server.replies = [Reply(500, b"model crashed", "text/plain")]
    with pytest.raises(MediaError, match="after 4 attempt") as caught:
        seedvc(server, retries=4).synthesize_sentence(
            "hi", voice=VoiceSpec("v", "en-US", reference), speed=1.0, out_path=tmp_path / "out.wav"
        )
    assert not caught.value.permanent
    assert "HTTP 500" in str(caught.value) and "model crashed" in str(caught.value)
    assert len(server.received) == 4
    assert not (tmp_path / "out.wav").exists()


def test_slow_server_times_out_as_a_transient_error(server, reference, tmp_path) -> None:
    server.replies = [Reply(body=wav_bytes(), delay_s=1.5)]
    started = time.monotonic()
    with pytest.raises(MediaError, match="did not answer within") as caught:
        seedvc(server, timeout=0.3, retries=2).synthesize_sentence(
            "hi", voice=VoiceSpec("v", "en-US", reference), speed=1.0, out_path=tmp_path / "out.wav"
        )
    assert not caught.value.permanent
    assert len(server.received) == 2
    assert time.monotonic() - started < 1.5


def test_reply_that_is_not_audio_is_permanent(server, reference, tmp_path) -> None:
    page = b"<html><body>Welcome to nginx!</body></html>" * 3
    server.replies = [Reply(body=page, content_type="text/html")]
    with pytest.raises(MediaError, match="not audio") as caught:
        seedvc(server).synthesize_sentence(
            "hi", voice=VoiceSpec("v", "en-US", reference), speed=1.0, out_path=tmp_path / "out.wav"
        )
    assert caught.value.permanent
    assert len(server.received) == 1  # no retry: the server answered, with nonsense
    assert not list(tmp_path.glob("out.wav*"))


def test_empty_reply_is_permanent(server, reference, tmp_path) -> None:
    server.replies = [Reply(body=b"")]
    with pytest.raises(MediaError, match="no audio") as caught:
        seedvc(server).synthesize_sentence(
            "hi", voice=VoiceSpec("v", "en-US", reference), speed=1.0, out_path=tmp_path / "out.wav"
        )
    assert caught.value.permanent


def test_mp3_reply_is_converted_to_wav(server, reference, tmp_path) -> None:
    mp3 = tmp_path / "reply.mp3"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=d=0.5",
            "-c:a",
            "libmp3lame",
            str(mp3),
        ],
        check=True,
        timeout=60,
    )
    server.replies = [Reply(body=mp3.read_bytes(), content_type="audio/mpeg")]
    seedvc(server).synthesize_sentence(
        "hi", voice=VoiceSpec("v", "en-US", reference), speed=1.0, out_path=tmp_path / "out.wav"
    )
    assert_wav(tmp_path / "out.wav")


def test_seedvc_without_url_or_reference_is_refused(server, tmp_path) -> None:
    with pytest.raises(MediaError, match="URL"):
        tts_http.SeedVCBackend({}).synthesize_sentence(
            "hi", voice=VoiceSpec("v", "en-US", tmp_path / "x.wav"), speed=1.0, out_path=tmp_path / "out.wav"
        )
    with pytest.raises(MediaError, match="reference"):
        seedvc(server).synthesize_sentence(
            "hi", voice=VoiceSpec("v", "en-US", None), speed=1.0, out_path=tmp_path / "out.wav"
        )
    assert tts_http.SeedVCBackend.needs_reference and not server.received


def test_unreachable_server_is_transient(reference, tmp_path) -> None:
    backend = tts_http.SeedVCBackend({"url": "http://127.0.0.1:9/tts", **FAST, "retries": 2})
    with pytest.raises(MediaError, match="cannot reach SeedVC") as caught:
        backend.synthesize_sentence(
            "hi", voice=VoiceSpec("v", "en-US", reference), speed=1.0, out_path=tmp_path / "out.wav"
        )
    assert not caught.value.permanent


# --- Azure -----------------------------------------------------------------------------------


def test_azure_sends_ssml_with_key_voice_and_rate(server, tmp_path) -> None:
    azure(server).synthesize_sentence(
        "Tom & Jerry <3",
        voice=VoiceSpec("en-US-GuyNeural", "en-US"),
        speed=1.25,
        out_path=tmp_path / "out.wav",
    )
    assert_wav(tmp_path / "out.wav")
    [request] = server.received
    assert request.path == "/cognitiveservices/v1"
    assert request.headers["Ocp-Apim-Subscription-Key"] == "secret-key"
    assert request.headers["X-Microsoft-OutputFormat"] == "riff-24khz-16bit-mono-pcm"
    assert request.headers["Content-Type"] == "application/ssml+xml"
    ssml = request.body.decode()
    assert '<voice name="en-US-GuyNeural">' in ssml and 'rate="+25%"' in ssml
    assert "Tom &amp; Jerry &lt;3" in ssml and 'xml:lang="en-US"' in ssml


def test_azure_picks_a_default_voice_for_the_language(server, tmp_path) -> None:
    say(azure(server), "你好", VoiceSpec("", "zh-CN"), tmp_path, speed=0.8)
    ssml = server.received[0].body.decode()
    assert "zh-CN-XiaoxiaoNeural" in ssml and 'rate="-20%"' in ssml


def test_azure_401_is_permanent_with_a_clear_message(server, tmp_path) -> None:
    server.replies = [Reply(401, b"", "text/plain")]
    unauthorised = r"Azure TTS refused the request as unauthorised \(HTTP 401\): check the key"
    with pytest.raises(MediaError, match=unauthorised) as caught:
        say(azure(server), "hi", VoiceSpec("", "en-US"), tmp_path)
    assert caught.value.permanent
    assert len(server.received) == 1


def test_azure_400_is_permanent(server, tmp_path) -> None:
    server.replies = [Reply(400, b"SSML parsing error", "text/plain")]
    with pytest.raises(MediaError, match="HTTP 400.*SSML parsing error") as caught:
        say(azure(server), "hi", VoiceSpec("", "en-US"), tmp_path)
    assert caught.value.permanent


def test_azure_429_then_success(server, tmp_path) -> None:
    server.replies = [Reply(429, b"Too many requests", "text/plain"), Reply(body=wav_bytes())]
    say(azure(server), "hi", VoiceSpec("", "en-US"), tmp_path)
    assert len(server.received) == 2


def test_azure_needs_a_key_and_a_region_or_endpoint(tmp_path) -> None:
    with pytest.raises(MediaError, match="key"):
        tts_http.AzureBackend({"region": "eastus"}).synthesize_sentence(
            "hi", voice=VoiceSpec("", "en-US"), speed=1.0, out_path=tmp_path / "o.wav"
        )
    with pytest.raises(MediaError, match="region"):
        tts_http.AzureBackend({"key": "k"}).synthesize_sentence(
            "hi", voice=VoiceSpec("", "en-US"), speed=1.0, out_path=tmp_path / "o.wav"
        )


def test_unknown_language_without_voice_name_is_refused() -> None:
    with pytest.raises(MediaError, match="xx-YY"):
        tts_http.default_neural_voice("xx-YY")
    assert tts_http.default_neural_voice("en") == "en-US-AriaNeural"
    assert tts_http.default_neural_voice("ja_JP") == "ja-JP-NanamiNeural"


def test_speed_maps_to_prosody_rate() -> None:
    assert [tts_http.prosody_rate(speed) for speed in (0.5, 0.8, 1.0, 1.25, 2.0)] == [
        "-50%",
        "-20%",
        "+0%",
        "+25%",
        "+100%",
    ]


# --- Edge ------------------------------------------------------------------------------------


@pytest.fixture
def fake_edge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A local websocket server speaking Edge's read-aloud protocol, one MP3 per request, and the
    two words' boundaries of EDGE_WORDS when the client asks for word boundaries."""
    from aiohttp import web
    from edge_tts import communicate

    mp3 = tmp_path / "edge.mp3"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=d=0.5",
            "-ar",
            "24000",
            "-c:a",
            "libmp3lame",
            str(mp3),
        ],
        check=True,
        timeout=60,
    )
    ssml_received: list[str] = []

    async def speak(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        config = (await socket.receive()).data  # speech.config
        ssml_received.append((await socket.receive()).data)
        if '"wordBoundaryEnabled":"true"' in config:
            for text, offset, duration in EDGE_WORDS:
                metadata = json.dumps(
                    {
                        "Metadata": [
                            {
                                "Type": "WordBoundary",
                                "Data": {
                                    "Offset": offset,
                                    "Duration": duration,
                                    "text": {"Text": text, "Length": len(text)},
                                },
                            }
                        ]
                    }
                )
                await socket.send_str(f"X-RequestId:1\r\nPath:audio.metadata\r\n\r\n{metadata}")
        header = b"X-RequestId:1\r\nContent-Type:audio/mpeg\r\nPath:audio\r\n"
        await socket.send_bytes(len(header).to_bytes(2, "big") + header + mp3.read_bytes())
        await socket.send_str("X-RequestId:1\r\nPath:turn.end\r\n\r\n{}")
        await socket.close()
        return socket

    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_get("/edge/v1", speak)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(communicate, "WSS_URL", f"ws://127.0.0.1:{port}/edge/v1?TrustedClientToken=test")
    yield ssml_received
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()


def test_edge_speaks_through_edge_tts_and_writes_wav(fake_edge: list[str], tmp_path: Path) -> None:
    backend = tts_http.EdgeBackend(FAST)
    say(backend, "你好 & 再见", VoiceSpec("", "zh-CN"), tmp_path, speed=1.5)
    assert_wav(tmp_path / "o.wav")
    [ssml] = fake_edge
    assert "zh-CN, XiaoxiaoNeural" in ssml and "rate='+50%'" in ssml and "你好 &amp; 再见" in ssml


def test_edge_word_boundaries_give_the_word_times(fake_edge: list[str], tmp_path: Path) -> None:
    spoken = tts_http.EdgeBackend(FAST).synthesize_sentence(
        "你好 world", voice=VoiceSpec("", "zh-CN"), speed=1.0, out_path=tmp_path / "o.wav"
    )
    assert [(word.text, word.start_ms, word.end_ms) for word in spoken] == [
        ("你好", 50, 200),
        ("world", 250, 450),
    ]


def test_edge_word_times_survive_the_narration_cache(fake_edge: list[str], tmp_path: Path) -> None:
    from media_engine import tts, words

    narration = tts.synthesize(
        ["你好 world"],
        platform="edge",
        voice=VoiceSpec("", "zh-CN"),
        speed=1.0,
        out_dir=tmp_path,
        options=FAST,
    )
    again = tts.synthesize(
        ["你好 world"],
        platform="edge",
        voice=VoiceSpec("", "zh-CN"),
        speed=1.0,
        out_dir=tmp_path,
        options=FAST,
    )
    assert len(fake_edge) == 1  # the second narration came from the cache, words included
    assert narration.word_source == again.word_source == words.EDGE_SOURCE
    assert [word.text for word in again.words] == ["你好", "world"] and again.words == narration.words
    # The sine starts at once, so nothing is trimmed off the front: the service's times stand.
    assert [(word.start_ms, word.end_ms) for word in again.words] == [(50, 200), (250, 450)]


def test_azure_rest_gives_no_word_times() -> None:
    assert tts_http.AzureBackend.word_source == "" and tts_http.SeedVCBackend.word_source == ""


def test_edge_unreachable_is_transient_after_retries(tmp_path: Path) -> None:
    # A proxy on a closed local port: edge-tts fails to connect without any outside traffic.
    backend = tts_http.EdgeBackend({**FAST, "retries": 2, "proxy": "http://127.0.0.1:9"})
    started = time.monotonic()
    with pytest.raises(MediaError, match="Edge TTS failed after 2 attempt.*cannot reach Edge TTS") as caught:
        backend.synthesize_sentence(
            "hello", voice=VoiceSpec("en-US-AriaNeural", "en-US"), speed=1.0, out_path=tmp_path / "o.wav"
        )
    assert not caught.value.permanent
    assert time.monotonic() - started < 10
    assert not (tmp_path / "o.wav").exists()


def test_edge_rejects_a_malformed_voice_name(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="rejected") as caught:
        tts_http.EdgeBackend(FAST).synthesize_sentence(
            "hello", voice=VoiceSpec("Aria", "en-US"), speed=1.0, out_path=tmp_path / "o.wav"
        )
    assert caught.value.permanent


def test_backends_are_found_through_the_tts_registry() -> None:
    from media_engine import tts

    assert isinstance(tts.get_backend("seedvc", {"url": "http://x"}), tts_http.SeedVCBackend)
    assert isinstance(tts.get_backend("azure"), tts_http.AzureBackend)
    assert isinstance(tts.get_backend("edge"), tts_http.EdgeBackend)
