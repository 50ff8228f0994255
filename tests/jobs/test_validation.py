import pytest
from django.core.exceptions import ValidationError

from jobs import services
from jobs.validation import NOTHING_TO_NARRATE, clean_content, clean_job_input
from tests.factories import make_language, make_topic


def test_clean_content_removes_editor_notes_and_control_characters():
    raw = "第一句。#@#编辑备注，不要读#@#第二句。\x00\x07\r\n第三行\t带制表符\u200b"
    assert clean_content(raw) == "第一句。第二句。\n第三行\t带制表符"


def test_clean_content_removes_multiline_notes():
    assert clean_content("a #@#one\ntwo#@# b #@#x#@#") == "a  b"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("title", "", "Title is empty"),
        ("title", "x" * 256, "at most 255"),
        ("content", "", "Content is empty"),
        ("content", "#@#only a note#@#\x01", "Content is empty"),
        ("content", "字" * 10001, "at most 10000"),
        ("speech_speed", 0.4, "outside 0.5-2.0"),
        ("speech_speed", 2.01, "outside 0.5-2.0"),
        ("speech_speed", "fast", "must be a number"),
        ("orientation", "square", "Orientation must be one of"),
    ],
)
def test_bad_job_input_names_the_field_and_the_problem(user, field, value, message):
    data = {"title": "ok", "content": "ok", field: value}
    with pytest.raises(ValidationError) as caught:
        clean_job_input(user, data)
    assert field in caught.value.message_dict
    assert message in caught.value.message_dict[field][0]


def test_limits_are_inclusive(user):
    cleaned = clean_job_input(user, {"title": "t" * 255, "content": "字" * 10000, "speech_speed": 2.0})
    assert len(cleaned["title"]) == 255
    assert cleaned["speech_speed"] == 2.0
    assert clean_job_input(user, {"speech_speed": "0.5"})["speech_speed"] == 0.5


def test_content_length_counts_after_cleaning(user):
    content = "字" * 10000 + "#@#" + "note" * 100 + "#@#"
    assert len(clean_job_input(user, {"content": content})["content"]) == 10000


def test_foreign_keys_must_be_visible_to_the_user(user, other_user):
    private_topic = make_topic(owner=other_user)
    shared_language = make_language(owner=None)
    with pytest.raises(ValidationError) as caught:
        clean_job_input(user, {"topic": private_topic, "language": shared_language})
    assert list(caught.value.message_dict) == ["topic"]
    assert "is not yours" in caught.value.message_dict["topic"][0]


def test_job_create_stores_cleaned_values_and_owner(user):
    job = services.job_create(user=user, title="  健康小贴士 ", content="喝水。#@#note#@#\x00散步。")
    job.refresh_from_db()
    assert job.title == "健康小贴士"
    assert job.content == "喝水。散步。"
    assert job.owner == user


def test_job_create_with_bad_input_stores_nothing(user):
    from jobs.models import Job

    with pytest.raises(ValidationError):
        services.job_create(user=user, title="", content="")
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_content_with_nothing_speakable_is_refused_at_creation_and_import_not_at_render(user):
    """Issue 17: "。。。！！！……" used to be accepted and fail only when the render narrated it."""
    from jobs.exports import importing
    from tests.api.conftest import client_for

    response = client_for(user).post("/api/v1/jobs/", {"title": "t", "content": "。。。！！！……"}, format="json")
    assert response.status_code == 400
    assert response.json()["content"] == [NOTHING_TO_NARRATE]
    payload = '[{"title": "t", "content": "?!…"}]'.encode()
    rows = importing.import_parse(payload, filename="jobs.json", user=user)
    assert rows[0].errors["content"] == [NOTHING_TO_NARRATE]
