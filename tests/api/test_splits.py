from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from jobs.models import JobSplit, StockClip
from tests.api.conftest import png_bytes
from tests.factories import make_job


def make_split(job, index: int = 0, text: str = "今天天气很好。", **fields) -> JobSplit:
    return JobSplit.objects.create(job=job, index=index, start_ms=index * 1000, end_ms=index * 1000 + 1000,
                                   text=text, **fields)


def make_clip(owner) -> StockClip:
    clip = StockClip(owner=owner, title="sea", duration_ms=1000, width=64, height=36)
    clip.file.save("sea.mp4", ContentFile(b"not really a video"), save=False)
    clip.save()
    return clip


def splits_url(job, index: int | None = None, action: str = "") -> str:
    url = f"/api/v1/jobs/{job.pk}/splits/"
    if index is not None:
        url += f"{index}/"
    return url + (f"{action}/" if action else "")


def test_list_and_get_segments_in_order(api, member):
    job = make_job(owner=member, content="今天天气很好。我们去公园散步。")
    make_split(job, 1, "我们去公园散步。")
    make_split(job, 0, "今天天气很好。", images=[{"key": "jobs/p.png", "seed": 3, "source": "flux"}])
    response = api.get(splits_url(job))
    assert response.status_code == 200
    assert [row["index"] for row in response.data] == [0, 1]
    assert response.data[0]["images"][0]["url"].startswith("/files/")
    assert api.get(splits_url(job, 1)).data["text"] == "我们去公园散步。"
    assert api.get(splits_url(job, 7)).status_code == 404


def test_editing_text_changes_the_job_script(api, member):
    job = make_job(owner=member, content="今天天气很好。我们去公园散步。")
    make_split(job, 0, "今天天气很好。")
    response = api.patch(splits_url(job, 0), {"text": "今天天气真好。", "prompt": "a sunny park"},
                         format="json")
    assert response.status_code == 200, response.data
    assert response.data["text"] == "今天天气真好。"
    assert response.data["prompt"] == "a sunny park"
    job.refresh_from_db()
    assert job.content == "今天天气真好。我们去公园散步。"
    response = api.patch(splits_url(job, 0), {"text": "#@#only a note#@#"}, format="json")
    assert response.status_code == 400 and "text" in response.data


def test_choose_a_candidate_picture(api, member):
    job = make_job(owner=member)
    make_split(job, 0, images=[{"key": "jobs/a.png", "seed": 1, "source": "flux"},
                               {"key": "jobs/b.png", "seed": 2, "source": "flux"}], selected="jobs/a.png")
    response = api.patch(splits_url(job, 0), {"selected": "jobs/b.png"}, format="json")
    assert response.status_code == 200
    assert response.data["selected"] == "jobs/b.png"
    response = api.patch(splits_url(job, 0), {"selected": "jobs/elsewhere.png"}, format="json")
    assert response.status_code == 400
    assert "not one of this segment's pictures" in str(response.data["selected"][0])


def test_use_a_library_clip_only_if_visible(api, member, stranger):
    job = make_job(owner=member)
    make_split(job, 0)
    mine, theirs = make_clip(member), make_clip(stranger)
    response = api.patch(splits_url(job, 0), {"clip": mine.pk}, format="json")
    assert response.status_code == 200
    assert response.data["clip"]["id"] == mine.pk
    response = api.patch(splits_url(job, 0), {"clip": theirs.pk}, format="json")
    assert response.status_code == 400
    assert response.data["clip"] == [f"Clip {theirs.pk} does not exist or is not yours."]
    assert api.patch(splits_url(job, 0), {"clip": None}, format="json").data["clip"] is None


def test_upload_a_picture_stored_under_a_generated_name(api, member):
    job = make_job(owner=member)
    make_split(job, 0)
    upload = {"file": ContentFile(png_bytes(), name="../../evil.php")}
    response = api.post(splits_url(job, 0, "images"), upload, format="multipart")
    assert response.status_code == 201, response.data
    image = response.data["images"][-1]
    assert image["source"] == "upload"
    assert image["key"].endswith(".png") and "evil" not in image["key"]
    assert response.data["selected"] == image["key"]
    assert default_storage.exists(image["key"])


def test_upload_rejects_what_is_not_a_picture(api, member):
    job = make_job(owner=member)
    make_split(job, 0)
    response = api.post(splits_url(job, 0, "images"), {"file": ContentFile(b"<?php echo 1;", name="a.png")},
                        format="multipart")
    assert response.status_code == 400
    assert "file" in response.data
    big = ContentFile(b"\x89PNG" + b"0" * (5 * 1024 * 1024), name="big.png")
    response = api.post(splits_url(job, 0, "images"), {"file": big}, format="multipart")
    assert response.status_code == 400 and "MB" in str(response.data["file"][0])


def test_segments_of_other_users_and_shared_jobs(api, admin_api, stranger):
    theirs = make_job(owner=stranger)
    make_split(theirs, 0)
    assert api.get(splits_url(theirs)).status_code == 404
    assert api.patch(splits_url(theirs, 0), {"prompt": "x"}, format="json").status_code == 404
    shared = make_job(owner=None)
    make_split(shared, 0)
    assert api.get(splits_url(shared)).status_code == 200
    assert api.patch(splits_url(shared, 0), {"prompt": "x"}, format="json").status_code == 403
    assert admin_api.patch(splits_url(shared, 0), {"prompt": "x"}, format="json").status_code == 200


def test_segments_need_a_login(anon_api, member):
    job = make_job(owner=member)
    make_split(job, 0)
    assert anon_api.get(splits_url(job)).status_code == 401
