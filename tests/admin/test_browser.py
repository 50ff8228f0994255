"""The admin in a real browser: storyboard picking, re-render with the live bar, batch import."""

import io
import shutil
import threading
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection

from jobs import services, storyboard
from jobs.models import ExecutionStatus, Job, JobSplit
from jobs.render import loop
from tests.admin.conftest import make_operator
from tests.factories import make_preset_job

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "pass-word-123"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() or not shutil.which("ffmpeg"),
        reason="needs /usr/bin/chromium (apt-get install -y chromium) and ffmpeg",
    ),
]


def png(colour: tuple[int, int, int]) -> SimpleUploadedFile:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (272, 154), colour).save(buffer, format="PNG")
    return SimpleUploadedFile("picture.png", buffer.getvalue())


@pytest.fixture
def browser_page(monkeypatch):
    # Playwright's sync API keeps an event loop on this thread; the ORM calls in the test are still sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        # The pages work under their Content-Security-Policy: the browser blocked nothing they use.
        refused = []
        page.on(
            "console",
            lambda message: (
                refused.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        yield page
        browser.close()
        assert refused == []


@pytest.fixture
def rendered(settings):
    settings.SEGMENT_TARGET_MS = 1500
    operator = make_operator()
    job = make_preset_job(owner=operator, title="公园散步")
    execution = loop.execution_run(execution=services.execution_create(job=job))
    assert execution.status == ExecutionStatus.SUCCESS, execution.detail
    for split_row in job.splits.all():
        storyboard.split_add_image(split_row=split_row, uploaded=png((30, 120, 200)), select=False)
        storyboard.split_add_image(split_row=split_row, uploaded=png((220, 160, 20)), select=False)
    return operator, job


def log_in(page, live_server, user) -> None:
    page.goto(live_server.url + "/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_storyboard_pick_and_rerender_in_the_browser(browser_page, live_server, rendered):
    # Waits through locators: wait_for_function evaluates its text, which the pages' CSP forbids.
    from playwright.sync_api import expect

    page, (operator, job) = browser_page, rendered
    log_in(page, live_server, operator)
    page.goto(live_server.url + "/admin/jobs/job/")
    assert page.locator(".status-success").count() == 1
    shot(page, "job-list.png")

    page.goto(f"{live_server.url}/admin/jobs/job/{job.pk}/storyboard/")
    page.evaluate("window.notReloaded = true")
    first = page.locator(".split").nth(0)
    first.locator(".thumb").nth(1).click()
    page.wait_for_selector(".split >> nth=0 >> .thumb.selected >> nth=0")
    first.locator('.thumb[aria-pressed="true"]').nth(0).wait_for()
    expect(first.locator(".thumb").nth(1)).to_have_attribute("aria-pressed", "true")
    splits = list(JobSplit.objects.filter(job=job).order_by("index"))
    assert splits[0].selected == splits[0].images[1]["key"]

    # Keyboard: focus the second segment's first picture, arrow right twice, Space to pick.
    second = page.locator(".split").nth(1)
    second.locator(".thumb").nth(0).focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")
    expect(second.locator(".thumb").nth(2)).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("window.notReloaded") is True
    splits = list(JobSplit.objects.filter(job=job).order_by("index"))
    assert splits[1].selected == splits[1].images[2]["key"]
    shot(page, "storyboard.png")
    page.reload()
    assert "selected" in (page.locator(".split").nth(1).locator(".thumb").nth(2).get_attribute("class") or "")

    page.goto(f"{live_server.url}/admin/jobs/job/{job.pk}/change/")
    page.click("text=Render / re-render")
    page.wait_for_url(f"**/admin/jobs/job/{job.pk}/change/")
    assert job.executions.filter(status=ExecutionStatus.PENDING).exists()

    def work() -> None:
        try:
            loop.execution_run_next()
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    expect(page.locator(".job-progress .percent")).to_have_text("100%", timeout=120_000)
    page.locator(".job-progress .result video").wait_for(state="visible", timeout=30_000)
    worker.join(timeout=120)
    latest = Job.objects.get(pk=job.pk).latest_execution
    assert latest.status == ExecutionStatus.SUCCESS
    assert page.locator(".job-progress .result video").get_attribute("src")
    shot(page, "job-page.png")


def test_storyboard_upload_listen_merge_and_split_in_the_browser(
    browser_page, live_server, rendered, tmp_path
):
    page, (operator, job) = browser_page, rendered
    log_in(page, live_server, operator)
    page.goto(f"{live_server.url}/admin/jobs/job/{job.pk}/storyboard/")
    first, second = JobSplit.objects.filter(job=job).order_by("index")

    # Listen: the second segment's player starts where the segment starts in the narration (the /files/
    # view answers byte ranges, so the browser can seek).
    audio = page.locator(".split").nth(1).locator("audio")
    assert audio.get_attribute("src").endswith(f"#t={second.start_ms / 1000:.3f},{second.end_ms / 1000:.3f}")
    audio.evaluate("""audio => new Promise((done) => {
        audio.addEventListener("canplay", done, {once: true}); audio.load(); })""")
    assert abs(audio.evaluate("audio => audio.currentTime") - second.start_ms / 1000) < 0.05

    # Upload a picture to the second segment: it becomes its selected picture.
    picture = tmp_path / "red.png"
    picture.write_bytes(png((200, 20, 20)).read())
    page.set_input_files(f'input[name="picture-{second.pk}"]', str(picture))
    page.click("input[value=Save]")
    page.wait_for_selector(".messagelist")
    second.refresh_from_db()
    assert second.images[-1]["source"] == "upload" and second.selected == second.images[-1]["key"]
    assert page.locator(".split").nth(1).locator(".thumb.selected img").get_attribute("src")

    # Merge the two: the first showed only its generated card, so the merged one shows the upload.
    page.click(f'button[name="merge"][value="{first.pk}"]')
    page.wait_for_selector("text=Merged segments 0 and 1.")
    assert page.locator(".split").count() == 1
    assert JobSplit.objects.get(job=job).selected == second.selected
    # Split it again after its first sentence.
    page.select_option(f'select[name="at-{first.pk}"]', "1")
    page.click(f'button[name="divide"][value="{first.pk}"]')
    page.wait_for_selector("text=Split segment 0")
    assert page.locator(".split").count() == 2
    shot(page, "storyboard-tools.png")
    rows = list(JobSplit.objects.filter(job=job).order_by("index"))
    assert [row.sentences for row in rows] == [[first.text], [second.text]]
    assert rows[0].pk == first.pk and rows[0].selected == second.selected and rows[1].selected == ""
    assert rows[0].end_ms == first.end_ms  # back in the middle of the pause, from the rendered narration


def test_import_preview_and_create_in_the_browser(browser_page, live_server):
    call_command("seed_presets")
    operator = make_operator()
    page = browser_page
    log_in(page, live_server, operator)
    page.goto(live_server.url + "/admin/jobs/job/import/")
    csv_text = (
        "title,content,language,voice,topic,account\n"
        "Park,今天天气很好。,zh-CN,cmn,Health tips,demo-channel\n"
        "Sea,我们去海边。,zh-CN,cmn,Health tips,demo-channel\n"
        "Broken,,zz-ZZ,cmn,Health tips,demo-channel\n"
    )
    page.set_input_files(
        "#id_file", files=[{"name": "jobs.csv", "mimeType": "text/csv", "buffer": csv_text.encode()}]
    )
    page.click("input[value=Preview]")
    page.wait_for_selector("table.import-preview")
    assert "2 good row(s), 1 bad row(s)" in page.content()
    assert page.locator("tr.row-bad").count() == 1
    shot(page, "import-preview.png")
    page.click("input[name=confirm]")
    page.wait_for_url("**/admin/jobs/job/")
    assert sorted(Job.objects.filter(owner=operator).values_list("title", flat=True)) == ["Park", "Sea"]
