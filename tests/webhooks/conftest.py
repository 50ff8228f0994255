"""A real receiver on 127.0.0.1 (a ThreadingHTTPServer in a thread) that checks each request's
signature with the README's own verify function, and answers the statuses it is told to."""

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_receiver() -> dict:
    """The README's webhook receiver, run as it is printed there (its names: verify, Receiver)."""
    text = README.read_text()
    pattern = r"<!-- webhook-receiver -->\n```python\n(.*?)```\n<!-- /webhook-receiver -->"
    block = re.search(pattern, text, re.DOTALL)
    assert block is not None, "the README lost its webhook receiver"
    namespace: dict = {"__name__": "readme_receiver"}
    exec(compile(block.group(1), "README.md", "exec"), namespace)  # noqa: S102 - our own README
    return namespace


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool

    @property
    def event(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    secret: str = ""
    statuses: list[int] = field(default_factory=list)  # answered in turn; then 200
    requests: list[Received] = field(default_factory=list)


@pytest.fixture
def receiver(settings):
    """A receiver at http://127.0.0.1:<port>/hook; 127.0.0.1 and that port are allowed for webhooks in
    these tests."""
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    verify = readme_receiver()["verify"]
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            verified = verify(state.secret, body, self.headers.get("X-BatchVideo-Signature", ""))
            state.requests.append(Received(dict(self.headers), body, verified))
            self.send_response(state.statuses.pop(0) if state.statuses else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.WEBHOOK_ALLOWED_PORTS = [server.server_address[1]]
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook?source=batchvideo"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def sweep_and_send() -> int:
    """The delivery sweep, then the sends it (and earlier events) queued, run here as a worker would
    run them (these tests start no qcluster). How many the sweep woke."""
    from django_q.models import OrmQ

    from jobs import tasks
    from jobs.webhooks.delivery import SEND_TASK, deliveries_sweep

    woken = deliveries_sweep()
    for queued in OrmQ.objects.order_by("id"):
        if queued.func() == SEND_TASK:
            queued.delete()
            tasks.webhook_send(*queued.task["args"])
    return woken
