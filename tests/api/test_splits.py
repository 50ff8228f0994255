from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from jobs.models import ExecutionStatus, JobSplit, StockClip
from tests.api.conftest import png_bytes
from tests.factories import make_execution, make_job


def make_split(job, index: int = 0, text: str = "今天天气很好。", **fields) -> JobSplit:
    return JobSplit.objects.create(
        job=job, index=index, start_ms=index * 1000, end_ms=index * 1000 + 1000, text=text, **fields
    )


def make_clip(owner) -> StockClip:
    clip = StockClip(
        owner=owner, team=owner and owner.personal_team, title="sea", duration_ms=1000, width=64, height=36
    )
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
    response = api.patch(
        splits_url(job, 0), {"text": "今天天气真好。", "prompt": "a sunny park"}, format="json"
    )
    assert response.status_code == 200, response.data
    assert response.data["text"] == "今天天气真好。"
    assert response.data["prompt"] == "a sunny park"
    job.refresh_from_db()
    assert job.content == "今天天气真好。我们去公园散步。"
    response = api.patch(splits_url(job, 0), {"text": "#@#only a note#@#"}, format="json")
    assert response.status_code == 400 and "text" in response.data


def test_choose_a_candidate_picture(api, member):
    job = make_job(owner=member)
    make_split(
        job,
        0,
        images=[
            {"key": "jobs/a.png", "seed": 1, "source": "flux"},
            {"key": "jobs/b.png", "seed": 2, "source": "flux"},
        ],
        selected="jobs/a.png",
    )
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
    response = api.post(
        splits_url(job, 0, "images"),
        {"file": ContentFile(b"<?php echo 1;", name="a.png")},
        format="multipart",
    )
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


# ---------------------------------------------------------------- split, merge, re-split


def two_segments(owner):
    """[第一句。第二句。] with an upload shown and a card, then [第三句。] with a clip."""
    job = make_job(owner=owner, content="第一句。第二句。第三句。")
    first = make_split(
        job,
        0,
        "第一句。第二句。",
        sentences=["第一句。", "第二句。"],
        prompt="two sentences",
        prompt_edited=True,
        selected="jobs/up.png",
        images=[
            {"key": "jobs/card.png", "seed": None, "source": "card"},
            {"key": "jobs/up.png", "seed": None, "source": "upload"},
        ],
    )
    first.end_ms = 2000
    first.save()
    second = make_split(
        job,
        1,
        "第三句。",
        sentences=["第三句。"],
        prompt="one sentence",
        prompt_edited=True,
        clip=make_clip(owner),
    )
    JobSplit.objects.filter(pk=second.pk).update(start_ms=2000, end_ms=3000)
    return job, first, second


def test_split_a_segment_after_a_sentence_keeps_its_choices_and_renumbers_the_rest(api, member):
    job, first, second = two_segments(member)
    response = api.post(splits_url(job, 0, "split"), {"at": 1}, format="json")
    assert response.status_code == 200, response.data
    assert [(row["id"], row["index"], row["sentences"]) for row in response.data] == [
        (first.pk, 0, ["第一句。"]),
        (response.data[1]["id"], 1, ["第二句。"]),
        (second.pk, 2, ["第三句。"]),
    ]
    kept, new, moved = response.data
    assert (kept["selected"], kept["prompt"]) == ("jobs/up.png", "two sentences")
    assert [image["source"] for image in kept["images"]] == ["card", "upload"]  # the card's headline stays
    assert new["selected"] == "" and new["clip"] is None and new["prompt"].endswith("第二句。")
    assert [image["key"] for image in new["images"]] == ["jobs/up.png"]  # the candidates, to pick from
    assert moved["clip"] is not None and moved["prompt"] == "one sentence"
    # Without a rendered narration the cut is placed by characters; the next render puts it in the pause.
    assert (kept["start_ms"], kept["end_ms"], new["start_ms"], new["end_ms"]) == (0, 1000, 1000, 2000)


def test_split_refuses_a_bad_boundary_with_a_clear_message(api, member):
    job, _first, _second = two_segments(member)
    response = api.post(splits_url(job, 0, "split"), {"at": 2}, format="json")
    assert response.status_code == 400
    assert response.data == {
        "at": [("Segment 0 has 2 sentences: split it after sentence 1 to 1, not after sentence 2.")]
    }
    response = api.post(splits_url(job, 1, "split"), {"at": 1}, format="json")
    assert response.data == {"at": ["Segment 1 is one sentence: there is no boundary in it to split at."]}
    assert api.post(splits_url(job, 0, "split"), {"at": 0}, format="json").status_code == 400
    assert api.post(splits_url(job, 0, "split"), {}, format="json").status_code == 400
    assert api.post(splits_url(job, 5, "split"), {"at": 1}, format="json").status_code == 404
    assert JobSplit.objects.filter(job=job).count() == 2


def test_merge_with_the_next_segment_keeps_the_first_ones_choices_and_both_pictures(api, member):
    job, first, second = two_segments(member)
    third = make_split(
        job,
        2,
        "第四句。",
        sentences=["第四句。"],
        selected="jobs/four.png",
        images=[{"key": "jobs/four.png", "seed": None, "source": "upload"}],
    )
    response = api.post(splits_url(job, 0, "merge"), format="json")
    assert response.status_code == 200, response.data
    assert [(row["id"], row["index"]) for row in response.data] == [(first.pk, 0), (third.pk, 1)]
    merged = response.data[0]
    assert (
        merged["sentences"] == ["第一句。", "第二句。", "第三句。"]
        and merged["text"] == "第一句。第二句。第三句。"
    )
    assert (merged["selected"], merged["clip"], merged["prompt"]) == ("jobs/up.png", None, "two sentences")
    assert (merged["start_ms"], merged["end_ms"]) == (0, 3000)
    assert not JobSplit.objects.filter(pk=second.pk).exists()


def test_merge_into_a_segment_showing_only_a_card_takes_the_next_ones_choice(api, member):
    job, first, second = two_segments(member)
    JobSplit.objects.filter(pk=first.pk).update(selected="jobs/card.png")
    merged = api.post(splits_url(job, 0, "merge"), format="json").data[0]
    assert merged["clip"]["id"] == second.clip_id
    assert [image["key"] for image in merged["images"]] == ["jobs/card.png", "jobs/up.png"]  # its headline


def test_merge_of_the_last_segment_is_refused(api, member):
    job, _first, _second = two_segments(member)
    response = api.post(splits_url(job, 1, "merge"), format="json")
    assert response.status_code == 400
    assert response.data == {
        "non_field_errors": ["Segment 1 is the last one: there is no next segment to merge it with."]
    }


def test_split_merge_and_resplit_wait_for_a_running_render(api, member):
    job, _first, _second = two_segments(member)
    make_execution(job, status=ExecutionStatus.RUNNING)
    for response in (
        api.post(splits_url(job, 0, "split"), {"at": 1}, format="json"),
        api.post(splits_url(job, 0, "merge"), format="json"),
        api.post(f"/api/v1/jobs/{job.pk}/resplit/", format="json"),
    ):
        assert response.status_code == 400
        assert "rendering" in str(response.data)
    assert JobSplit.objects.filter(job=job).count() == 2


def test_structure_edits_of_other_users_and_shared_jobs(api, admin_api, stranger):
    theirs, _first, _second = two_segments(stranger)
    assert api.post(splits_url(theirs, 0, "split"), {"at": 1}, format="json").status_code == 404
    assert api.post(splits_url(theirs, 0, "merge"), format="json").status_code == 404
    assert api.post(f"/api/v1/jobs/{theirs.pk}/resplit/", format="json").status_code == 404
    shared, _first, _second = two_segments(None)
    assert api.post(splits_url(shared, 0, "merge"), format="json").status_code == 403
    assert api.post(f"/api/v1/jobs/{shared.pk}/resplit/", format="json").status_code == 403
    assert admin_api.post(splits_url(shared, 0, "merge"), format="json").status_code == 200


def test_resplit_needs_a_rendered_storyboard(api, member):
    job, _first, _second = two_segments(member)
    response = api.post(f"/api/v1/jobs/{job.pk}/resplit/", format="json")
    assert response.status_code == 400
    assert response.data == {
        "non_field_errors": [
            "This job has no storyboard yet: render it, and the render splits it into segments."
        ]
    }


def rendered_steps(texts: list[str], *, length_ms: int = 1000, pause_ms: int = 200) -> dict:
    """Step records of a render that narrated `texts` and laid out the storyboard."""
    sentences = [
        {
            "text": text,
            "start_ms": n * (length_ms + pause_ms),
            "end_ms": n * (length_ms + pause_ms) + length_ms,
        }
        for n, text in enumerate(texts)
    ]
    return {
        "narration": {
            "status": "done",
            "outputs": {"narration": "jobs/1/1/narration.wav"},
            "data": {"duration_ms": sentences[-1]["end_ms"], "sentences": sentences},
        },
        "segments": {"status": "done", "outputs": {}, "data": {}},
    }


def test_resplit_regroups_and_keeps_segments_whose_exact_sentences_survive(api, member):
    job, first, second = two_segments(member)
    job.extra = {"segment_target_ms": 1000}
    job.save()
    make_execution(
        job, status=ExecutionStatus.SUCCESS, steps=rendered_steps(["第一句。", "第二句。", "第三句。"])
    )
    response = api.post(f"/api/v1/jobs/{job.pk}/resplit/", format="json")
    assert response.status_code == 200, response.data
    assert (response.data["kept"], response.data["dropped"]) == ([1], [0])
    assert [row["sentences"] for row in response.data["splits"]] == [["第一句。"], ["第二句。"], ["第三句。"]]
    assert response.data["splits"][2]["id"] == second.pk and response.data["splits"][2]["clip"] is not None
    assert not JobSplit.objects.filter(pk=first.pk).exists()
    # Exact times from the narration: cut in the middle of each pause.
    assert [(row["start_ms"], row["end_ms"]) for row in response.data["splits"]] == [
        (0, 1100),
        (1100, 2300),
        (2300, 3400),
    ]


def test_split_with_a_rendered_narration_cuts_in_the_middle_of_the_pause(api, member):
    job, _first, _second = two_segments(member)
    make_execution(
        job, status=ExecutionStatus.SUCCESS, steps=rendered_steps(["第一句。", "第二句。", "第三句。"])
    )
    response = api.post(splits_url(job, 0, "split"), {"at": 1}, format="json")
    assert [(row["start_ms"], row["end_ms"]) for row in response.data][:2] == [(0, 1100), (1100, 2000)]


# ---------------------------------------------------------------- cards, prompts and numbering after edits


def card_segments(owner):
    """[第一句，很长。第二句。] then [第三句。], each showing only its render-made card, prompts never edited."""
    job = make_job(owner=owner, content="第一句，很长。第二句。第三句。")
    first = make_split(
        job,
        0,
        "第一句，很长。第二句。",
        sentences=["第一句，很长。", "第二句。"],
        prompt="第一句，很长。第二句。",
        selected="jobs/card-0.png",
        images=[{"key": "jobs/card-0.png", "seed": None, "source": "card"}],
    )
    first.end_ms = 2000
    first.save()
    second = make_split(
        job,
        1,
        "第三句。",
        sentences=["第三句。"],
        prompt="第三句。",
        selected="jobs/card-1.png",
        images=[{"key": "jobs/card-1.png", "seed": None, "source": "card"}],
    )
    JobSplit.objects.filter(pk=second.pk).update(start_ms=2000, end_ms=3000)
    return job, first, second


def test_split_of_a_segment_showing_its_card_keeps_the_card_on_the_first_part(api, member):
    job, _first, _second = card_segments(member)

    kept, new, _moved = api.post(splits_url(job, 0, "split"), {"at": 1}, format="json").data

    assert kept["selected"] == "jobs/card-0.png"  # its headline is its first clause: still its own
    assert [image["key"] for image in kept["images"]] == ["jobs/card-0.png"]
    assert new["selected"] == "" and new["images"] == []  # the next render makes the new part's card


def test_merge_of_segments_showing_cards_keeps_the_first_ones_card(api, member):
    job, _first, _second = card_segments(member)

    merged = api.post(splits_url(job, 0, "merge"), format="json").data[0]

    assert merged["selected"] == "jobs/card-0.png"
    assert [image["key"] for image in merged["images"]] == [
        "jobs/card-0.png"
    ]  # the second's shows its own text


def test_a_text_edit_keeps_the_card_while_its_headline_stays(api, member):
    job, _first, _second = card_segments(member)

    edited = api.patch(splits_url(job, 0), {"text": "第一句，很长。第二句改了。"}, format="json").data
    assert edited["selected"] == "jobs/card-0.png"

    edited = api.patch(splits_url(job, 0), {"text": "头一句，很长。第二句改了。"}, format="json").data
    assert edited["selected"] == "" and edited["images"] == []  # the card shows the old headline


def test_a_prompt_never_edited_follows_the_text(api, member):
    job, _first, _second = card_segments(member)

    edited = api.patch(splits_url(job, 1), {"text": "第三句改了。"}, format="json").data

    assert edited["prompt"].endswith("第三句改了。") and "第三句。" not in edited["prompt"]


def test_a_prompt_the_operator_edited_is_kept_after_a_text_edit(api, member):
    job, _first, _second = card_segments(member)
    api.patch(splits_url(job, 1), {"prompt": "a quiet lake at dawn"}, format="json")

    edited = api.patch(splits_url(job, 1), {"text": "第三句改了。"}, format="json").data

    assert edited["prompt"] == "a quiet lake at dawn"


def test_split_and_merge_keep_the_prompt_the_operator_edited_and_refresh_the_others(api, member):
    job, _first, _second = card_segments(member)
    api.patch(splits_url(job, 1), {"prompt": "a quiet lake at dawn"}, format="json")

    kept, new, moved = api.post(splits_url(job, 0, "split"), {"at": 1}, format="json").data
    assert kept["prompt"].endswith("第一句，很长。") and new["prompt"].endswith("第二句。")
    assert moved["prompt"] == "a quiet lake at dawn"

    merged = api.post(splits_url(job, 1, "merge"), format="json").data[1]
    assert merged["prompt"].endswith("第二句。第三句。")  # the first one's prompt was never edited


def test_storyboard_messages_number_segments_as_the_urls_do(api, member):
    job, _first, _second = card_segments(member)

    response = api.post(splits_url(job, 1, "split"), {"at": 1}, format="json")
    assert response.data == {"at": ["Segment 1 is one sentence: there is no boundary in it to split at."]}
    response = api.post(splits_url(job, 0, "split"), {"at": 5}, format="json")
    assert response.data == {
        "at": [("Segment 0 has 2 sentences: split it after sentence 1 to 1, not after sentence 5.")]
    }
    response = api.post(splits_url(job, 1, "merge"), format="json")
    assert response.data == {
        "non_field_errors": ["Segment 1 is the last one: there is no next segment to merge it with."]
    }
