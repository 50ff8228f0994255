import pytest
from django.core.exceptions import ValidationError

from jobs import services
from jobs.validation import NOTHING_TO_NARRATE, clean_content, clean_job_input
from media_engine.errors import MediaError
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
        clean_job_input(user, data, team=user.personal_team)
    assert field in caught.value.message_dict
    assert message in caught.value.message_dict[field][0]


def test_limits_are_inclusive(user):
    cleaned = clean_job_input(
        user, {"title": "t" * 255, "content": "字" * 10000, "speech_speed": 2.0}, team=user.personal_team
    )
    assert len(cleaned["title"]) == 255
    assert cleaned["speech_speed"] == 2.0
    assert clean_job_input(user, {"speech_speed": "0.5"}, team=user.personal_team)["speech_speed"] == 0.5


def test_content_length_counts_after_cleaning(user):
    content = "字" * 10000 + "#@#" + "note" * 100 + "#@#"
    assert len(clean_job_input(user, {"content": content}, team=user.personal_team)["content"]) == 10000


def test_foreign_keys_must_be_visible_to_the_user(user, other_user):
    private_topic = make_topic(owner=other_user)
    shared_language = make_language(owner=None)
    with pytest.raises(ValidationError) as caught:
        clean_job_input(user, {"topic": private_topic, "language": shared_language}, team=user.personal_team)
    assert list(caught.value.message_dict) == ["topic"]
    assert "is not yours" in caught.value.message_dict["topic"][0]


def test_job_create_stores_cleaned_values_and_owner(user):
    job = services.job_create(
        user=user, team=user.personal_team, title="  健康小贴士 ", content="喝水。#@#note#@#\x00散步。"
    )
    job.refresh_from_db()
    assert job.title == "健康小贴士"
    assert job.content == "喝水。散步。"
    assert job.owner == user


def test_job_create_with_bad_input_stores_nothing(user):
    from jobs.models import Job

    with pytest.raises(ValidationError):
        services.job_create(user=user, team=user.personal_team, title="", content="")
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_content_with_nothing_speakable_is_refused_at_creation_and_import_not_at_render(user):
    """Issue 17: "。。。！！！……" used to be accepted and fail only when the render narrated it."""
    from jobs.exports import importing
    from tests.api.conftest import client_for

    response = client_for(user).post(
        "/api/v1/jobs/", {"title": "t", "content": "。。。！！！……"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["content"] == [NOTHING_TO_NARRATE]
    payload = '[{"title": "t", "content": "?!…"}]'.encode()
    rows = importing.import_parse(payload, filename="jobs.json", user=user, team=user.personal_team)
    assert rows[0].errors["content"] == [NOTHING_TO_NARRATE]


def _python_calls(function, *args) -> int:
    """How many Python-level calls `function(*args)` makes: a measure of its work that no machine's
    speed changes."""
    import sys

    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(count)
    try:
        function(*args)
    except (ValidationError, MediaError):
        pass  # refusing the text is one of the outcomes measured
    finally:
        sys.setprofile(None)
    return calls


@pytest.mark.parametrize("unit", ["!?.,;:-", "#$%&*+=<>", "a" + "." * 99, "。，" * 3])
def test_content_check_work_grows_linearly_with_hostile_text(unit):
    from jobs.validation import check_content

    small = _python_calls(check_content, (unit * 1000)[:1000])
    large = _python_calls(check_content, (unit * 10000)[:10000])

    assert large <= 12 * max(small, 50)  # ten times the text, about ten times the work


def test_content_of_symbols_only_is_refused_and_one_letter_among_them_is_not(user):
    with pytest.raises(ValidationError) as caught:
        clean_job_input(user, {"content": "#$%&*" * 2000}, team=user.personal_team)
    assert caught.value.message_dict["content"] == [NOTHING_TO_NARRATE]
    assert (
        clean_job_input(user, {"content": "." * 5000 + "a" + "." * 4999}, team=user.personal_team)["content"][
            5000
        ]
        == "a"
    )


def test_sentences_of_hostile_text_take_linear_work():
    from media_engine.sentences import split_sentences

    small = _python_calls(split_sentences, "a" + "." * 999)
    large = _python_calls(split_sentences, "a" + "." * 9999)

    assert large <= 12 * small


@pytest.mark.django_db
def test_validation_benchmark_prints_the_checks_and_the_batch_last():
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("benchmark", "validation", stdout=out)

    last = out.getvalue().strip().splitlines()[-1]
    assert (
        last.startswith("content check of 10000 characters: prose ") and "a batch of 100 hostile rows" in last
    )
