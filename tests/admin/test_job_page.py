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
        keys = [default_storage.save(f"jobs/{job.pk}/pictures/{index:03d}-{n}.png", ContentFile(b"png"))
                for n in range(3)]
        JobSplit.objects.create(job=job, index=index, start_ms=index * 1000, end_ms=index * 1000 + 1000,
                                text=text, prompt=f"prompt {index}",
                                images=[{"key": keys[0], "seed": None, "source": "card"},
                                        *[{"key": key, "seed": 1, "source": "sd"} for key in keys[1:]]],
                                selected=keys[0])
    return job


def choose(client, job, split, key):
    return client.post(reverse("admin:jobs_job_choose_image", args=[job.pk]),
                       json.dumps({"split": split.pk, "key": key}), content_type="application/json")


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
    clip = StockClip.objects.create(owner=operator, file="clips/sea.mp4", title="Sea")
    first, second = job.splits.order_by("index")
    response = client_for(operator).post(reverse("admin:jobs_job_storyboard", args=[job.pk]), {
        f"text-{first.pk}": "新的第一句。", f"prompt-{first.pk}": "a lake",
        f"text-{second.pk}": second.text, f"prompt-{second.pk}": second.prompt,
        f"clip-{first.pk}": "", f"clip-{second.pk}": str(clip.pk),
    })
    assert response.status_code == 302
    first.refresh_from_db(), second.refresh_from_db(), job.refresh_from_db()
    assert (first.text, first.prompt) == ("新的第一句。", "a lake")
    assert "新的第一句。" in job.content
    assert second.clip == clip


def test_storyboard_refuses_another_operators_clip(operator, other_operator):
    job = storyboard_job(operator)
    clip = StockClip.objects.create(owner=other_operator, file="clips/x.mp4")
    split = job.splits.get(index=0)
    response = client_for(operator).post(reverse("admin:jobs_job_storyboard", args=[job.pk]),
                                         {f"clip-{split.pk}": str(clip.pk)}, follow=True)
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
