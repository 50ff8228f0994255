"""The admin job list in a real browser against daphne: statuses and progress follow the websocket feed,
a notice says when a render finishes or fails, and the job page says which steps and chunks were reused."""

import shutil
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.db import connection

from jobs import services, storyboard
from jobs.models import ExecutionStatus
from jobs.render import loop
from tests.admin.test_browser import CHROMIUM, browser_page, log_in, png, rendered, shot  # noqa: F401 (fixtures)
from tests.factories import make_preset_job
from tests.processes import free_port, process_env, start, stop, wait_for_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() or not shutil.which("ffmpeg"),
        reason="needs /usr/bin/chromium (apt-get install -y chromium) and ffmpeg",
    ),
]


@pytest.fixture
def daphne(tmp_path):
    """The ASGI server (pages and websockets) on the test database; without Redis its feed reads the
    database once a second."""
    port = free_port()
    server = start(
        ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "batchvideo.asgi:application"],
        process_env(REDIS_URL=""),
        tmp_path / "daphne.log",
    )
    try:
        wait_for_port(port)
        yield SimpleNamespace(url=f"http://127.0.0.1:{port}")
    finally:
        stop(server)


def test_job_list_follows_renders_live_and_says_when_one_ends(browser_page, daphne, rendered):  # noqa: F811
    from playwright.sync_api import expect

    page, (operator, job) = browser_page, rendered
    waiting = make_preset_job(owner=operator, title="等待取消")
    log_in(page, daphne, operator)
    page.goto(daphne.url + "/admin/jobs/job/")
    expect(page.locator("body")).to_have_attribute("data-job-feed", "live", timeout=20_000)
    page.evaluate("window.notReloaded = true")
    status = page.locator(f'[data-job-status="{job.pk}"]')
    progress = page.locator(f'[data-job-progress="{job.pk}"]')
    expect(status).to_have_text("SUCCESS")

    # A new picture for the first segment, then a re-render by a worker.
    first = job.splits.get(index=0)
    storyboard.split_add_image(split_row=first, uploaded=png((200, 40, 40)))
    services.job_enqueue(job=job)
    expect(status).to_have_text("PENDING", timeout=20_000)

    def work() -> None:
        try:
            loop.execution_run_next()
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    expect(status).to_have_text("RUNNING", timeout=30_000)
    notice = page.locator(".job-notices li.success")
    expect(notice).to_contain_text("Render finished: 公园散步", timeout=120_000)
    worker.join(timeout=60)
    expect(status).to_have_text("SUCCESS")
    expect(progress).to_contain_text("100%")

    # One that ends without a video: queued, then cancelled before a worker takes it.
    execution = services.job_enqueue(job=waiting)
    expect(page.locator(f'[data-job-status="{waiting.pk}"]')).to_have_text("PENDING", timeout=20_000)
    services.execution_cancel(execution=execution)
    expect(page.locator(".job-notices li.error")).to_contain_text(
        "Render cancelled: 等待取消", timeout=20_000
    )
    expect(page.locator(f'[data-job-status="{waiting.pk}"]')).to_have_text("CANCELLED")
    assert page.evaluate("window.notReloaded") is True
    shot(page, "job-list-live.png")

    # The job page: the unchanged steps were reused, and compose remade only the chunks of the new picture.
    latest = job.executions.order_by("-id").first()
    assert latest.status == ExecutionStatus.SUCCESS
    chunks = latest.steps["compose"]["data"]["chunks"]
    page.goto(f"{daphne.url}/admin/jobs/job/{job.pk}/change/")
    expect(page.locator('[data-step="narration"] .state')).to_contain_text("reused")
    reused = len(chunks) - 2  # the first segment's piece and the fade out of it
    expect(page.locator('[data-step="compose"] .state')).to_contain_text(
        f"chunks: {reused} of {len(chunks)} reused"
    )
    shot(page, "job-page-reuse.png")
