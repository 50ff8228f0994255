import json

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from jobs.models import ExecutionStatus, JobSplit, StockClip
from tests.admin.conftest import client_for
from tests.admin.test_job_list import rendered_job
from tests.factories import make_execution, make_job

pytestmark = pytest.mark.django_db


def storyboard_job(owner):
    job = rendered_job(owner, content="第一句。第二句。")
    for index, text in enumerate(["第一句。", "第二句。"]):
        keys = [
            default_storage.save(f"jobs/{job.pk}/pictures/{index:03d}-{n}.png", ContentFile(b"png"))
            for n in range(3)
        ]
        JobSplit.objects.create(
            job=job,
            index=index,
            start_ms=index * 1000,
            end_ms=index * 1000 + 1000,
            text=text,
            prompt=f"prompt {index}",
            images=[
                {"key": keys[0], "seed": None, "source": "card"},
                *[{"key": key, "seed": 1, "source": "sd"} for key in keys[1:]],
            ],
            selected=keys[0],
        )
    return job


def choose(client, job, split, key):
    return client.post(
        reverse("admin:jobs_job_choose_image", args=[job.pk]),
        json.dumps({"split": split.pk, "key": key}),
        content_type="application/json",
    )


def test_job_page_has_fieldsets_progress_widget_player_and_executions(operator):
    job = rendered_job(operator, title="Page")
    make_execution(job, status=ExecutionStatus.FAILED, error="boom", worker_host="gpu-1")
    response = client_for(operator).get(reverse("admin:jobs_job_change", args=[job.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="job-progress"' in html and "job-progress-initial" in html
    assert "Voice and look" in html and "Publishing" in html
    assert '<video class="job-latest-video"' in html  # the latest render failed: the last good video shows
    assert 'class="job-cover"' in html and "/files/" in html
    assert "boom" in html and "gpu-1" in html and "narration done 1.5s" in html
    assert reverse("admin:jobs_job_storyboard", args=[job.pk]) in html


def test_job_page_of_another_operator_is_hidden(operator, other_operator):
    job = make_job(owner=other_operator)
    response = client_for(operator).get(reverse("admin:jobs_job_change", args=[job.pk]))
    assert response.status_code == 302  # the admin redirects a missing object to its index


def test_rerender_button_queues_a_render(operator):
    job = make_job(owner=operator)
    response = client_for(operator).post(reverse("admin:jobs_job_rerender", args=[job.pk]))
    assert response.status_code == 302
    assert job.executions.get().status == ExecutionStatus.PENDING


def test_rerender_denied_to_viewer_and_other_operator(viewer, other_operator):
    job = make_job(owner=viewer)
    assert client_for(viewer).post(reverse("admin:jobs_job_rerender", args=[job.pk])).status_code == 403
    other = client_for(other_operator)
    assert other.post(reverse("admin:jobs_job_rerender", args=[job.pk])).status_code == 404
    assert job.executions.count() == 0


def test_storyboard_lists_splits_with_thumbnails_and_selection(operator):
    job = storyboard_job(operator)
    response = client_for(operator).get(reverse("admin:jobs_job_storyboard", args=[job.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('class="thumb selected"') == 2 and html.count('class="thumb"') == 4
    assert "第二句。" in html and "prompt 1" in html and "0:01.0" in html


def test_choose_image_selects_the_picture(operator):
    job = storyboard_job(operator)
    split = job.splits.get(index=1)
    key = split.images[2]["key"]
    response = choose(client_for(operator), job, split, key)
    assert response.status_code == 200 and response.json()["selected"] == key
    split.refresh_from_db()
    assert split.selected == key


def test_choose_image_rejects_a_foreign_key(operator):
    job = storyboard_job(operator)
    split = job.splits.get(index=0)
    response = choose(client_for(operator), job, split, "jobs/999/other.png")
    assert response.status_code == 400


def test_choose_image_denied_to_other_operator_and_viewer(operator, other_operator, viewer):
    job = storyboard_job(operator)
    split = job.splits.get(index=0)
    key = split.images[1]["key"]
    assert choose(client_for(other_operator), job, split, key).status_code == 404
    other = client_for(other_operator)
    assert other.get(reverse("admin:jobs_job_storyboard", args=[job.pk])).status_code == 404
    own = storyboard_job(viewer)
    own_split = own.splits.get(index=0)
    assert choose(client_for(viewer), own, own_split, own_split.images[1]["key"]).status_code == 403
    assert client_for(viewer).get(reverse("admin:jobs_job_storyboard", args=[own.pk])).status_code == 403
    split.refresh_from_db()
    assert split.selected == split.images[0]["key"]


def test_choose_image_needs_csrf(operator):
    from django.test import Client

    job = storyboard_job(operator)
    split = job.splits.get(index=0)
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    assert choose(client, job, split, split.images[1]["key"]).status_code == 403


def test_storyboard_saves_text_prompt_and_clip(operator):
    job = storyboard_job(operator)
    clip = StockClip.objects.create(
        owner=operator, team=operator.personal_team, file="clips/sea.mp4", title="Sea"
    )
    first, second = job.splits.order_by("index")
    response = client_for(operator).post(
        reverse("admin:jobs_job_storyboard", args=[job.pk]),
        {
            f"text-{first.pk}": "新的第一句。",
            f"prompt-{first.pk}": "a lake",
            f"text-{second.pk}": second.text,
            f"prompt-{second.pk}": second.prompt,
            f"clip-{first.pk}": "",
            f"clip-{second.pk}": str(clip.pk),
        },
    )
    assert response.status_code == 302
    first.refresh_from_db(), second.refresh_from_db(), job.refresh_from_db()
    assert (first.text, first.prompt) == ("新的第一句。", "a lake")
    assert "新的第一句。" in job.content
    assert second.clip == clip


def test_storyboard_refuses_another_operators_clip(operator, other_operator):
    job = storyboard_job(operator)
    clip = StockClip.objects.create(
        owner=other_operator, team=other_operator.personal_team, file="clips/x.mp4"
    )
    split = job.splits.get(index=0)
    response = client_for(operator).post(
        reverse("admin:jobs_job_storyboard", args=[job.pk]), {f"clip-{split.pk}": str(clip.pk)}, follow=True
    )
    assert "not yours" in response.content.decode()
    split.refresh_from_db()
    assert split.clip is None


def test_regenerate_pictures_clears_cards_and_selection(operator):
    job = storyboard_job(operator)
    split = job.splits.get(index=0)
    url = reverse("admin:jobs_job_storyboard", args=[job.pk])
    client_for(operator).post(url, {"regenerate": str(split.pk)})
    split.refresh_from_db()
    assert split.selected == ""
    assert [image["source"] for image in split.images] == ["sd", "sd"]


def test_storyboard_save_and_rerender_queues(operator):
    job = storyboard_job(operator)
    url = reverse("admin:jobs_job_storyboard", args=[job.pk])
    response = client_for(operator).post(url, {"rerender": "1"})
    assert response["Location"] == reverse("admin:jobs_job_change", args=[job.pk])
    assert job.executions.filter(status=ExecutionStatus.PENDING).exists()


def test_add_page_and_deleted_job_page_render(operator):
    from django.utils import timezone

    client = client_for(operator)
    assert client.get(reverse("admin:jobs_job_add")).status_code == 200
    job = make_job(owner=operator, deleted_at=timezone.now())
    html = client.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()
    assert "job-progress" in html and "Render / re-render</button>" not in html


def test_viewer_sees_the_job_page_without_edit_buttons(viewer):
    job = rendered_job(viewer)
    html = client_for(viewer).get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()
    assert "job-progress" in html
    assert "Render / re-render</button>" not in html
    assert reverse("admin:jobs_job_storyboard", args=[job.pk]) not in html


# ---------------------------------------------------------------- split, merge, upload, listen, re-split


def structured_job(owner):
    """Segments [第一句。第二句。] (an upload shown) and [第三句。], laid out by a render whose narration
    (1 s sentences, 200 ms pauses) is in storage."""
    job = make_job(owner=owner, content="第一句。第二句。第三句。")
    narration = default_storage.save(f"jobs/{job.pk}/1/narration.wav", ContentFile(b"RIFF fake wav"))
    sentences = [
        {"text": text, "start_ms": n * 1200, "end_ms": n * 1200 + 1000}
        for n, text in enumerate(["第一句。", "第二句。", "第三句。"])
    ]
    make_execution(
        job,
        status=ExecutionStatus.SUCCESS,
        steps={
            "narration": {
                "status": "done",
                "outputs": {"narration": narration},
                "data": {"duration_ms": 3400, "sentences": sentences},
            },
            "segments": {"status": "done", "outputs": {}, "data": {}},
        },
    )
    upload = default_storage.save(f"jobs/{job.pk}/pictures/000-upload.png", ContentFile(b"png"))
    JobSplit.objects.create(
        job=job,
        index=0,
        start_ms=0,
        end_ms=2300,
        text="第一句。第二句。",
        sentences=["第一句。", "第二句。"],
        prompt="park",
        selected=upload,
        images=[{"key": upload, "seed": None, "source": "upload"}],
    )
    JobSplit.objects.create(
        job=job, index=1, start_ms=2300, end_ms=3400, text="第三句。", sentences=["第三句。"]
    )
    return job


def storyboard_url(job) -> str:
    return reverse("admin:jobs_job_storyboard", args=[job.pk])


def png_upload(name: str = "mine.png", content: bytes | None = None):
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    if content is None:
        buffer = io.BytesIO()
        Image.new("RGB", (16, 9), (10, 200, 10)).save(buffer, format="PNG")
        content = buffer.getvalue()
    return SimpleUploadedFile(name, content, content_type="image/png")


def test_storyboard_offers_split_merge_upload_listening_and_resplit(operator):
    job = structured_job(operator)
    first, second = job.splits.order_by("index")
    html = client_for(operator).get(storyboard_url(job)).content.decode()
    assert 'enctype="multipart/form-data"' in html
    # Each segment plays the stored narration from its start to its end.
    assert html.count("<audio") == 2
    assert "#t=0.000,2.300" in html and "#t=2.300,3.400" in html and 'src="/files/' in html
    assert f'name="at-{first.pk}"' in html and f'name="at-{second.pk}"' not in html  # one sentence: no split
    assert "after “第一句。”" in html
    assert html.count('name="merge"') == 1  # the last segment has no next one
    assert f'name="picture-{first.pk}"' in html and f'name="picture-{second.pk}"' in html
    assert reverse("admin:jobs_job_resplit", args=[job.pk]) in html


def test_storyboard_split_button_splits_after_the_chosen_sentence(operator):
    job = structured_job(operator)
    first, second = job.splits.order_by("index")
    response = client_for(operator).post(
        storyboard_url(job), {"divide": str(first.pk), f"at-{first.pk}": "1"}, follow=True
    )
    assert "Split segment 0" in response.content.decode()
    rows = list(job.splits.order_by("index"))
    assert [(row.pk, row.sentences) for row in rows] == [
        (first.pk, ["第一句。"]),
        (rows[1].pk, ["第二句。"]),
        (second.pk, ["第三句。"]),
    ]
    assert (rows[0].end_ms, rows[1].start_ms) == (1100, 1100)  # the middle of the pause
    assert rows[0].selected == first.selected and rows[1].selected == ""


def test_storyboard_split_refuses_a_bad_boundary_in_the_api_words(operator):
    job = structured_job(operator)
    first = job.splits.get(index=0)
    response = client_for(operator).post(
        storyboard_url(job), {"divide": str(first.pk), f"at-{first.pk}": "5"}, follow=True
    )
    assert "Segment 0 has 2 sentences: split it after sentence 1 to 1, not after sentence 5." in (
        response.content.decode()
    )
    assert job.splits.count() == 2


def test_storyboard_merge_button_merges_with_the_next_segment(operator):
    job = structured_job(operator)
    first = job.splits.get(index=0)
    response = client_for(operator).post(storyboard_url(job), {"merge": str(first.pk)}, follow=True)
    assert "Merged segments 0 and 1." in response.content.decode()
    merged = job.splits.get()
    assert (merged.pk, merged.sentences, merged.end_ms) == (
        first.pk,
        ["第一句。", "第二句。", "第三句。"],
        3400,
    )
    assert merged.selected == first.selected


def test_storyboard_upload_adds_and_selects_the_picture(operator):
    job = structured_job(operator)
    second = job.splits.get(index=1)
    response = client_for(operator).post(storyboard_url(job), {f"picture-{second.pk}": png_upload()})
    assert response.status_code == 302
    second.refresh_from_db()
    assert [image["source"] for image in second.images] == ["upload"]
    assert second.selected == second.images[0]["key"] and "mine" not in second.selected
    assert default_storage.exists(second.selected)


def test_storyboard_upload_refuses_what_the_api_refuses_in_the_same_words(operator):
    job = structured_job(operator)
    second = job.splits.get(index=1)
    response = client_for(operator).post(
        storyboard_url(job), {f"picture-{second.pk}": png_upload("evil.png", b"<?php echo 1;")}, follow=True
    )
    assert "Segment 1: The upload is not a readable PNG, JPEG or WebP picture." in response.content.decode()
    second.refresh_from_db()
    assert second.images == [] and second.selected == ""


def test_resplit_page_says_what_is_kept_then_regroups(operator):
    job = structured_job(operator)
    job.extra = {"segment_target_ms": 1000}
    job.save()
    first, second = job.splits.order_by("index")
    url = reverse("admin:jobs_job_resplit", args=[job.pk])
    html = " ".join(client_for(operator).get(url).content.decode().split())
    assert "3 segments instead of 2" in html
    assert "segment 1 keeps its prompt, pictures, selection and clip" in html
    assert "segment 0 loses its prompt, picture choice and clip" in html
    assert job.splits.count() == 2  # nothing changes before the confirmation
    response = client_for(operator).post(url, follow=True)
    assert "Re-split into 3 segments; 1 kept their pictures." in response.content.decode()
    rows = list(job.splits.order_by("index"))
    assert [row.sentences for row in rows] == [["第一句。"], ["第二句。"], ["第三句。"]]
    assert rows[2].pk == second.pk and not JobSplit.objects.filter(pk=first.pk).exists()


def test_resplit_before_any_render_says_so(operator):
    job = storyboard_job(operator)
    response = client_for(operator).get(reverse("admin:jobs_job_resplit", args=[job.pk]), follow=True)
    assert "This job has no storyboard yet" in response.content.decode()


def test_resplit_denied_to_viewer_and_other_operator(operator, other_operator, viewer):
    job = structured_job(operator)
    url = reverse("admin:jobs_job_resplit", args=[job.pk])
    assert client_for(other_operator).post(url).status_code == 404
    own = structured_job(viewer)
    assert client_for(viewer).post(reverse("admin:jobs_job_resplit", args=[own.pk])).status_code == 403
    assert own.splits.count() == 2 and job.splits.count() == 2


def test_storyboard_numbers_segments_as_the_api_urls_do(operator):
    """Segment n is /api/v1/jobs/<id>/splits/n/ on the page, in its messages and in the API's."""
    job = structured_job(operator)
    first, second = job.splits.order_by("index")
    client = client_for(operator)

    html = client.get(storyboard_url(job)).content.decode()
    assert "<h2>Segment 0</h2>" in html and "<h2>Segment 1</h2>" in html and "<h2>Segment 2</h2>" not in html

    response = client.post(storyboard_url(job), {"divide": str(first.pk), f"at-{first.pk}": "5"}, follow=True)
    assert "Segment 0 has 2 sentences" in response.content.decode()
    response = client.post(storyboard_url(job), {"divide": str(first.pk), f"at-{first.pk}": "1"}, follow=True)
    assert "Split segment 0: segment 1 starts a new picture on the next render." in response.content.decode()
    response = client.post(storyboard_url(job), {"merge": str(first.pk)}, follow=True)
    assert "Merged segments 0 and 1." in response.content.decode()
    response = client.post(storyboard_url(job), {"regenerate": str(second.pk)}, follow=True)
    assert "Segment 1 gets new pictures on the next render." in response.content.decode()


def test_job_page_lists_execution_steps_in_pipeline_order(operator):
    job = make_job(owner=operator)
    done = {"status": "done", "duration_s": 1.0}
    make_execution(
        job,
        status=ExecutionStatus.SUCCESS,
        steps={
            "cover": done,
            "compose": done,
            "pictures": done,
            "segments": done,
            "subtitles": done,
            "narration": done,
        },
    )

    html = client_for(operator).get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()

    names = ["narration", "subtitles", "segments", "pictures", "compose", "cover"]
    listed = html.index("narration done")
    assert [html.index(f"{name} done", listed) for name in names] == sorted(
        html.index(f"{name} done", listed) for name in names
    )
