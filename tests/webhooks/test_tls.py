"""HTTPS receivers: the send connects to the checked address yet verifies the certificate against the
URL's host name (SNI), and a certificate it cannot verify is a failed try, retried later."""

import datetime
import ipaddress
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from jobs.models import DeliveryStatus
from jobs.webhooks import delivery as sending
from jobs.webhooks import events, subscriptions
from tests.factories import make_user
from tests.webhooks.conftest import readme_receiver, sweep_and_send

pytestmark = pytest.mark.django_db


def self_signed(folder) -> tuple[str, str]:
    """A certificate for the name localhost (and 127.0.0.1) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
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
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


@pytest.fixture
def tls_receiver(tmp_path, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    cert_path, key_path = self_signed(tmp_path)
    verify = readme_receiver()["verify"]
    state = {"secret": "", "verified": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state["verified"].append(verify(state["secret"], body, self.headers["X-BatchVideo-Signature"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.WEBHOOK_ALLOWED_PORTS = [server.server_address[1]]
    state.update(port=server.server_address[1], cert=cert_path)
    yield state
    server.shutdown()
    server.server_close()


def test_https_delivery_verifies_the_certificate_for_the_urls_host_name(tls_receiver, monkeypatch):
    owner = make_user()
    webhook = subscriptions.webhook_create(
        user=owner, team=owner.personal_team, url=f"https://localhost:{tls_receiver['port']}/hook"
    )
    tls_receiver["secret"] = webhook.secret
    monkeypatch.setattr(sending.certifi, "where", lambda: tls_receiver["cert"])  # trust this one certificate

    [delivery] = events.event_record(team=owner.personal_team, kind="render.done", data={})
    sweep_and_send()

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.attempt_log.get().error
    assert tls_receiver["verified"] == [True]


def test_an_unverifiable_certificate_is_a_failed_try(tls_receiver):
    owner = make_user()
    subscriptions.webhook_create(
        user=owner, team=owner.personal_team, url=f"https://localhost:{tls_receiver['port']}/hook"
    )

    [delivery] = events.event_record(team=owner.personal_team, kind="render.done", data={})
    sweep_and_send()

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1  # retried later
    assert "CERTIFICATE_VERIFY_FAILED" in delivery.attempt_log.get().error
    assert tls_receiver["verified"] == []
