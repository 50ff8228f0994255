"""The Job.extra and Account.extra rules as plain functions (the admin uses them too)."""

import pytest
from django.core.exceptions import ValidationError

from accounts.brand import check_account_extra
from jobs.options import check_job_extra


def test_valid_job_extra_passes_unchanged():
    extra = {
        "h2v": False,
        "index_text": "第1集",
        "title_text": "t",
        "desc_text": "d",
        "real_clip_ratio": 0,
        "segment_target_ms": 60000,
        "music": "music/calm.mp3",
    }
    assert check_job_extra(extra) == extra


@pytest.mark.parametrize(
    "key, value",
    [
        ("h2v", 1),
        ("h2v", "true"),
        ("real_clip_ratio", -0.1),
        ("real_clip_ratio", True),
        ("real_clip_ratio", "0.5"),
        ("segment_target_ms", 999),
        ("segment_target_ms", 5000.5),
        ("segment_target_ms", True),
        ("index_text", 5),
        ("music", None),
        ("title_text", "x" * 501),
        # music is a file in storage under music/: never a host path, a way out of the folder or a URL
        ("music", "calm.mp3"),
        ("music", "/etc/passwd"),
        ("music", "music/../settings.py"),
        ("music", "http://169.254.169.254/music/x"),
        ("music", "music/"),
        ("music", "music\\..\\x"),
    ],
)
def test_invalid_job_extra_values(key, value):
    with pytest.raises(ValidationError) as error:
        check_job_extra({key: value})
    assert set(error.value.message_dict) == {key}


def test_unknown_keys_are_named():
    with pytest.raises(ValidationError) as error:
        check_job_extra({"segment_target": 5000})
    assert "Unknown key" in error.value.message_dict["segment_target"][0]
    assert "segment_target_ms" in error.value.message_dict["segment_target"][0]


def test_extra_must_be_an_object():
    with pytest.raises(ValidationError):
        check_account_extra(["fade"])


@pytest.mark.parametrize(
    "key, value",
    [
        ("subtitle_background", "#12345"),
        ("subtitle_color", "white"),
        ("transition_types", "fade"),
        ("transition_types", ["fade", 3]),
        ("enable_transition", "no"),
        ("logo_corner", "center"),
        ("human_insertion_mode", "corner"),
        ("human_config", []),
        ("human_config", {"corner": "middle"}),
        ("subtitle_background_opacity", 2),
        ("transition_s", -1),
        ("subtitle_font_size", 0),
    ],
)
def test_invalid_account_extra_values(key, value):
    with pytest.raises(ValidationError) as error:
        check_account_extra({key: value})
    assert set(error.value.message_dict) == {key}
