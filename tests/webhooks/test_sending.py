"""A send is bounded by one deadline, and a delivery has one sender at a time (issue 27's webhook part)."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError

from jobs.models import DeliveryStatus, WebhookDelivery
from jobs.webhooks import events, subscriptions
from jobs.webhooks.delivery import DELIVERIES, delivery_resend, delivery_send
from tests.factories import make_user


@pytest.fixture
def server(settings):
    """A receiver whose answer each test writes (`answer(handler)`), on an allowed 127.0.0.1 port."""
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    state = {"answer": None, "requests": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            state["requests"] += 1
            state["answer"](self)

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    settings.WEBHOOK_ALLOWED_PORTS = [httpd.server_address[1]]
    state["url"] = f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    yield state
    httpd.shutdown()
    httpd.server_close()


def _one_delivery(url: str) -> WebhookDelivery:
    owner = make_user()
    subscriptions.webhook_create(user=owner, team=owner.personal_team, url=url)
    [delivery] = events.event_record(team=owner.personal_team, kind="render.done", data={})
    return delivery


@pytest.mark.django_db
def test_a_receiver_that_answers_a_byte_every_half_second_is_cut_off_at_the_send_deadline(server, settings):
    settings.WEBHOOK_TIMEOUT_S = 2

    def drip(handler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n")
        for _ in range(40):
            try:
                handler.wfile.write(b"x")
                handler.wfile.flush()
            except OSError:
                return
            time.sleep(0.5)

    server["answer"] = drip
    delivery = _one_delivery(server["url"])
    started = time.monotonic()
    sent = delivery_send(delivery_id=delivery.pk)
    took = time.monotonic() - started
    assert took < 4, f"the send took {took:.1f} s past its 2 s deadline"
    assert sent.status == DeliveryStatus.PENDING and sent.attempts == 1  # retried later
    assert "took longer than 2 s" in sent.attempt_log.get().error


@pytest.mark.django_db
def test_a_receiver_that_never_answers_is_cut_off_at_the_deadline_too(server, settings):
    settings.WEBHOOK_TIMEOUT_S = 1
    server["answer"] = lambda handler: time.sleep(10)
    delivery = _one_delivery(server["url"])
    started = time.monotonic()
    sent = delivery_send(delivery_id=delivery.pk)
    assert time.monotonic() - started < 3
    assert "took longer than 1 s" in sent.attempt_log.get().error


@pytest.mark.django_db(transaction=True)
def test_a_resend_during_a_send_does_not_make_a_second_sender(server):
    answering, release = threading.Event(), threading.Event()

    def slow(handler) -> None:
        answering.set()
        release.wait(10)
        handler.send_response(200)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    server["answer"] = slow
    delivery = _one_delivery(server["url"])
    first = threading.Thread(target=delivery_send, kwargs={"delivery_id": delivery.pk})
    first.start()
    try:
        assert answering.wait(10)
        with pytest.raises(ValidationError, match="is being sent right now"):
            delivery_resend(delivery=delivery)
        assert delivery_send(delivery_id=delivery.pk) is None  # a second sender finds it held
        assert DELIVERIES.sweep() == 0
    finally:
        release.set()
        first.join(10)
    delivery.refresh_from_db()
    assert server["requests"] == 1 and delivery.status == DeliveryStatus.DELIVERED
    resent = delivery_resend(delivery=delivery)  # once the send is over, it may be sent again
    assert resent.status == DeliveryStatus.PENDING and resent.attempts == 0


@pytest.mark.django_db
def test_a_sender_that_died_mid_send_leaves_the_delivery_due_once_its_lease_ends(server):
    delivery = _one_delivery(server["url"])
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.SENDING)  # lease ended now
    assert DELIVERIES.claimable().filter(pk=delivery.pk).exists()


@pytest.mark.django_db
def test_webhook_sends_and_publications_wait_on_the_io_cluster_not_behind_renders(
    settings, server, django_capture_on_commit_callbacks
):
    from django_q.models import OrmQ

    from jobs.publishing.publications import PUBLICATIONS
    from jobs.render.queue import RENDERS

    settings.IO_CLUSTER = "io"
    owner = make_user()
    subscriptions.webhook_create(user=owner, team=owner.personal_team, url=server["url"])
    with django_capture_on_commit_callbacks(execute=True):  # the send is queued once the event commits
        events.event_record(team=owner.personal_team, kind="render.done", data={})
    PUBLICATIONS.wake(41)
    RENDERS.wake()
    queued = {(task.func(), task.key) for task in OrmQ.objects.all()}
    assert queued == {
        ("jobs.tasks.webhook_send", "io"),
        ("jobs.tasks.run_publication", "io"),
        ("jobs.tasks.run_next_execution", settings.CPU_CLUSTER),
    }


@pytest.mark.processes
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_slow_drip_receiver_holds_no_render_worker_and_delays_no_render_queued_behind_its_send(
    server, tmp_path
):
    """Real qclusters: one render worker (`default`) and one `io` worker. While render.done of the
    first render drips into a receiver (a byte every half second), a render queued then starts at
    once on the only render worker; the send ends at its deadline. (With IO_CLUSTER=default the
    render waits behind the send.)"""
    from django.db import connection

    from jobs import services
    from jobs.models import ExecutionStatus, JobExecution
    from tests.factories import make_preset_job
    from tests.jobs.test_worker_farm_chaos import CLUSTER_ENV, wait_until
    from tests.processes import process_env, start, stop

    if connection.vendor != "postgresql":
        pytest.skip("qcluster processes sharing a database: needs PostgreSQL")
    dripping = threading.Event()

    def drip(handler) -> None:
        dripping.set()
        try:
            handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\n")
            for _ in range(60):
                handler.wfile.write(b"x")
                handler.wfile.flush()
                time.sleep(0.5)
        except OSError:
            pass
        finally:
            dripping.clear()

    server["answer"] = drip
    owner = make_user()
    subscriptions.webhook_create(user=owner, team=owner.personal_team, url=server["url"])
    first, second = (make_preset_job(owner=owner, title=f"滴 {n}") for n in (1, 2))
    port = server["url"].split(":")[2].split("/")[0]
    env = process_env(
        **CLUSTER_ENV,
        IO_CLUSTER="io",
        WEBHOOK_TIMEOUT_S="6",
        WEBHOOK_RETRY_BACKOFF_S="600",
        WEBHOOK_ALLOWED_NETWORKS="127.0.0.1/32",
        WEBHOOK_ALLOWED_PORTS=port,
    )
    logs = [tmp_path / "render.log", tmp_path / "io.log"]
    clusters = [
        start(["manage.py", "qcluster"], env, logs[0]),
        start(["manage.py", "qcluster"], {**env, "Q_CLUSTER_NAME": "io"}, logs[1]),
    ]
    try:
        services.job_enqueue(job=first)
        wait_until(dripping.is_set, timeout=180, what="render.done dripping into the receiver", logs=logs)
        send_started = time.monotonic()
        queued = services.job_enqueue(job=second)
        running = JobExecution.objects.filter(pk=queued.pk).exclude(status=ExecutionStatus.PENDING)
        wait_until(running.exists, timeout=30, what="the second render started", logs=logs)
        started_after = time.monotonic() - send_started
        still_sending = WebhookDelivery.objects.order_by("pk").first().status == DeliveryStatus.SENDING
        wait_until(
            lambda: (
                WebhookDelivery.objects.order_by("pk").first().attempts >= 1
                and JobExecution.objects.get(pk=queued.pk).status == ExecutionStatus.SUCCESS
            ),
            timeout=180,
            what="the send tried and the second render done",
            logs=logs,
        )
    finally:
        for process in clusters:
            stop(process)
    assert still_sending and started_after < 5, (
        f"the second render started {started_after:.1f} s after the send began, once it had ended"
    )
    [attempt] = WebhookDelivery.objects.order_by("pk").first().attempt_log.all()  # the first render's
    assert "took longer than 6 s" in attempt.error and attempt.duration_ms < 7500
