"""A local fake of the parts of Google that publishing talks to, served over HTTPS (its own CA) from a
thread: the OAuth token endpoint, resumable video uploads (sessions that can drop the connection mid-way
and answer a status query with the range they hold), thumbnails.set and captions.insert, and scripted
quota, rate-limit and 5xx answers. It records what it received, for the tests to check field by field.
"""

import datetime
import email.parser
import email.policy
import ipaddress
import itertools
import json
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: (certificate, which is also the CA file; key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-youtube")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "fake-youtube.pem", folder / "fake-youtube.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@dataclass
class Upload:
    metadata: dict
    query: dict
    total: int
    data: bytearray = field(default_factory=bytearray)
    video_id: str = ""


@dataclass
class FakeYouTube:
    base_url: str = ""
    # refresh tokens the token endpoint accepts, and those it answers invalid_grant for
    refresh_tokens: set[str] = field(default_factory=set)
    revoked: set[str] = field(default_factory=set)
    # authorisation codes -> the refresh token their exchange yields
    codes: dict[str, str] = field(default_factory=dict)
    access_tokens: set[str] = field(default_factory=set)
    # per call ("videos.insert", "thumbnails.set", "captions.insert"): (status, reason) answers to give first
    failures: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    # drop the connection of upload PUTs that would carry the session past this byte, this many times
    drop_at_byte: int = 0
    drops_left: int = 0
    uploads: dict[str, Upload] = field(default_factory=dict)
    videos: dict[str, Upload] = field(default_factory=dict)
    thumbnails: list[dict] = field(default_factory=list)
    captions: list[dict] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    token_requests: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def scripted_failure(self, call: str) -> tuple[int, str] | None:
        with self.lock:
            answers = self.failures.get(call) or []
            return answers.pop(0) if answers else None

    def upload_puts(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "PUT" and r["path"].startswith("/upload/session/")]


def google_error(status: int, reason: str) -> dict:
    return {
        "error": {
            "code": status,
            "message": f"fake: {reason}",
            "errors": [{"reason": reason, "domain": "youtube.fake", "message": f"fake: {reason}"}],
        }
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "FakeServer"

    def log_message(self, format, *args) -> None:  # quiet
        pass

    @property
    def fake(self) -> FakeYouTube:
        return self.server.fake

    def _reply(self, status: int, body: dict | None = None, headers: dict | None = None) -> None:
        payload = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _record(self) -> tuple[str, dict]:
        parts = urlsplit(self.path)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        self.fake.requests.append(
            {
                "method": self.command,
                "path": parts.path,
                "query": query,
                "content_range": self.headers.get("Content-Range", ""),
                "authorization": self.headers.get("Authorization", ""),
            }
        )
        return parts.path, query

    def _authorised(self) -> bool:
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if token in self.fake.access_tokens:
            return True
        self._body()
        self._reply(401, google_error(401, "authError"))
        return False

    def _failed(self, call: str) -> bool:
        failure = self.fake.scripted_failure(call)
        if failure is None:
            return False
        self._body()
        self._reply(failure[0], google_error(*failure))
        return True

    # ------------------------------------------------------------ routes

    def do_POST(self) -> None:
        path, query = self._record()
        if path == "/token":
            return self._token()
        if not self._authorised():
            return None
        if path.endswith("/youtube/v3/videos") and query.get("uploadType") == "resumable":
            if self._failed("videos.insert"):
                return None
            session = self.fake.next_id("session-")
            self.fake.uploads[session] = Upload(
                metadata=json.loads(self._body() or b"{}"),
                query=query,
                total=int(self.headers["X-Upload-Content-Length"]),
            )
            return self._reply(200, headers={"Location": f"{self.fake.base_url}/upload/session/{session}"})
        if path.endswith("/youtube/v3/thumbnails/set"):
            if self._failed("thumbnails.set"):
                return None
            self.fake.thumbnails.append(
                {
                    "video_id": query.get("videoId"),
                    "query": query,
                    "content_type": self.headers.get("Content-Type"),
                    "data": self._body(),
                }
            )
            return self._reply(200, {"kind": "youtube#thumbnailSetResponse", "items": [{"default": {}}]})
        if path.endswith("/youtube/v3/captions"):
            if self._failed("captions.insert"):
                return None
            return self._caption(query)
        self._body()
        return self._reply(404, google_error(404, "notFound"))

    def do_PUT(self) -> None:
        path, _query = self._record()
        upload = self.fake.uploads.get(path.rsplit("/", 1)[-1])
        if not path.startswith("/upload/session/") or upload is None:
            self._body()
            return self._reply(404, google_error(404, "notFound"))
        content_range = self.headers.get("Content-Range", "")
        length = int(self.headers.get("Content-Length") or 0)
        if content_range.startswith("bytes */"):  # a status query: what do you have?
            self._body()
            return self._progress(upload)
        first = int(content_range.removeprefix("bytes ").split("-")[0])
        if first > len(upload.data):
            self._body()
            return self._reply(400, google_error(400, "badContentRange"))
        if self.fake.drops_left and first + length > self.fake.drop_at_byte >= len(upload.data):
            # Take the bytes up to the drop point (maybe none), then cut the connection without an answer.
            self.fake.drops_left -= 1
            upload.data[first:] = self.rfile.read(max(0, self.fake.drop_at_byte - first))
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        chunk = self.rfile.read(length)
        upload.data[first:] = chunk
        return self._progress(upload)

    def _progress(self, upload: Upload) -> None:
        if len(upload.data) >= upload.total:
            if not upload.video_id:
                upload.video_id = self.fake.next_id("video-")
                self.fake.videos[upload.video_id] = upload
            return self._reply(200, {"kind": "youtube#video", "id": upload.video_id, **upload.metadata})
        headers = {"Range": f"bytes=0-{len(upload.data) - 1}"} if upload.data else {}
        return self._reply(308, headers=headers)

    def _caption(self, query: dict) -> None:
        body = self._body()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + body
        )
        parts = list(message.iter_parts())
        metadata = json.loads(parts[0].get_content())
        track = parts[1].get_payload(decode=True)
        self.fake.captions.append({"query": query, "snippet": metadata["snippet"], "data": track})
        return self._reply(200, {"kind": "youtube#caption", "id": self.fake.next_id("caption-"), **metadata})

    def _token(self) -> None:
        form = {name: values[0] for name, values in parse_qs(self._body().decode()).items()}
        self.fake.token_requests.append(form)
        grant = form.get("grant_type")
        if grant == "refresh_token":
            if form.get("refresh_token") in self.fake.revoked:
                return self._reply(
                    400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
                )
            if form.get("refresh_token") not in self.fake.refresh_tokens:
                return self._reply(400, {"error": "invalid_grant", "error_description": "Bad Request"})
            refresh_token = None
        elif (
            grant == "authorization_code"
            and form.get("code") in self.fake.codes
            and form.get("code_verifier")
        ):
            refresh_token = self.fake.codes.pop(form["code"])
            self.fake.refresh_tokens.add(refresh_token)
        else:
            return self._reply(400, {"error": "invalid_grant", "error_description": "Malformed auth code."})
        access_token = self.fake.next_id("access-")
        self.fake.access_tokens.add(access_token)
        answer = {
            "access_token": access_token,
            "expires_in": 3600,
            "token_type": "Bearer",
            "scope": "https://www.googleapis.com/auth/youtube.upload "
            "https://www.googleapis.com/auth/youtube.force-ssl",
        }
        if refresh_token:
            answer["refresh_token"] = refresh_token
        return self._reply(200, answer)


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeYouTube, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.fake = fake
        self.context = context

    def get_request(self):
        sock, address = super().get_request()
        return self.context.wrap_socket(sock, server_side=True), address

    def handle_error(self, request, client_address) -> None:
        pass  # dropped connections are the point of some tests


def start(folder: Path) -> tuple[FakeYouTube, FakeServer, Path]:
    cert_path, key_path = make_certificate(folder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    fake = FakeYouTube()
    server = FakeServer(fake, context)
    fake.base_url = f"https://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, name="fake-youtube", daemon=True).start()
    return fake, server, cert_path
