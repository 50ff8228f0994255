"""A job narrates in its language with a voice of that language: `demo --text` detects the language
(or takes --language), a voice made for another language is refused, and a Spanish article goes from
text to narration, subtitles and cards."""

from pathlib import Path

import pysubs2
import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from jobs import services
from jobs.exports import importing
from jobs.maintenance.presets import presets_seed
from jobs.models import ExecutionStatus, Job
from jobs.render import loop as renders
from media_engine.cards import key_phrase
from media_engine.language import detect_language
from tests.factories import make_preset_job
from voices.models import Language, Voice

pytestmark = pytest.mark.django_db

ARTICLES = Path(__file__).resolve().parents[1] / "data" / "articles"
SPANISH = (
    "El Sr. García pagó 3,50 € por un café el miér. 31 de dic. a las 10:30. "
    "La inflación subió al 2,5% en 2023, aprox. un punto más."
)


@pytest.mark.parametrize(
    ("name", "code"),
    [("news_en", "en-US"), ("howto_en", "en-US"), ("news_zh", "zh-CN"), ("news_es", "es-ES")],
)
def test_the_language_of_an_article_is_detected_among_the_supported_ones(name, code):
    text = (ARTICLES / f"{name}.txt").read_text(encoding="utf-8")
    assert detect_language(text, ["zh-CN", "en-US", "ja-JP", "es-ES"]) == code


def test_a_job_whose_voice_cannot_speak_its_language_is_refused():
    presets_seed()
    english = Language.objects.get(owner=None, code="en-US")
    with pytest.raises(ValidationError) as refused:
        services.job_create(
            user=None,
            team=None,
            title="Mismatch",
            content="Hello there.",
            language=english,
            voice=Voice.objects.get(owner=None, name="cmn"),
        )
    assert refused.value.message_dict["voice"] == [
        (
            "The voice cmn speaks 中文（普通话） (zh-CN), not the job's language English (US) (en-US); "
            "choose a voice of English (US)."
        )
    ]
    # A job that got that way some other way is refused when it renders, with the same words.
    job = make_preset_job(content="今天天气很好。")
    Job.objects.filter(pk=job.pk).update(language=english)
    execution = renders.execution_run(execution=services.execution_create(job=Job.objects.get(pk=job.pk)))
    assert execution.status == ExecutionStatus.FAILED
    assert (
        "The voice cmn speaks 中文（普通话） (zh-CN), not the job's language English (US)" in execution.error
    )


def test_demo_refuses_an_unknown_language_and_a_text_of_no_language(tmp_path):
    text = tmp_path / "article.txt"
    text.write_text("Hello there, this is English.", encoding="utf-8")
    with pytest.raises(
        CommandError, match="No language 'xx-XX'; known languages: en-US, es-ES, ja-JP, zh-CN"
    ):
        call_command("demo", "--text", str(text), "--language", "xx-XX")
    text.write_text("12345 !!! 67890", encoding="utf-8")
    with pytest.raises(CommandError, match="Cannot tell which language"):
        call_command("demo", "--text", str(text))


@pytest.mark.slow
def test_spanish_article_goes_from_text_to_narration_subtitles_and_cards(settings, capsys, tmp_path):
    settings.SEGMENT_TARGET_MS = 4000
    text = tmp_path / "articulo.txt"
    text.write_text(SPANISH, encoding="utf-8")
    call_command("demo", "--text", str(text))
    out = capsys.readouterr().out
    assert "Language: Español (es-ES) (detected), voice es" in out
    assert Path(out.strip().splitlines()[-1]).suffix == ".mp4"
    job = Job.objects.get(title="Demo: articulo (horizontal)")
    assert (job.language.code, job.voice.name) == ("es-ES", "es")
    execution = job.executions.order_by("-created_at").first()
    # Two sentences: no break after "Sr.", "miér.", "dic." or "aprox." where the sentence goes on.
    sentences = [sentence["text"] for sentence in execution.steps["narration"]["data"]["sentences"]]
    assert len(sentences) == 2, sentences
    cues = pysubs2.load(default_storage.path(execution.results["srt"]))
    shown = " ".join(event.plaintext.replace("\n", " ") for event in cues)
    assert "3,50 €" in shown and "miér. 31 de dic. a las 10:30." in shown and "2,5%" in shown
    assert all(event.end - event.start >= 800 for event in cues)
    for split_row in job.splits.order_by("index"):
        assert split_row.selected  # a rendered card
        phrase = key_phrase(split_row.text, language="es-ES")
        assert phrase and split_row.text.startswith(phrase)


def test_import_detects_the_language_of_rows_that_name_none_and_says_so(tmp_path, capsys):
    presets_seed()
    csv_file = tmp_path / "jobs.csv"
    csv_file.write_text(
        "title,content,voice\n"
        'News,"WASHINGTON (AP) — U.S. consumer prices rose 0.4% in December, the Labor Department said.",\n'
        f'Noticia,"{SPANISH}",\n'
        'Mismatch,"Hello there, this is an English text.",cmn\n',
        encoding="utf-8",
    )
    rows = importing.import_parse(csv_file.read_bytes(), filename="jobs.csv", user=None, team=None)
    assert [row.language_label for row in rows] == [
        "en-US (detected)",
        "es-ES (detected)",
        "en-US (detected)",
    ]
    assert [row.data["voice"].name for row in rows[:2]] == ["en-us", "es"]
    assert rows[2].errors["voice"][0].startswith("The voice cmn speaks 中文（普通话） (zh-CN)")
    with pytest.raises(SystemExit):
        call_command("import_jobs", str(csv_file))
    out = capsys.readouterr().out
    assert "row 1 'News': created job" in out and "language en-US detected" in out
    assert "row 2 'Noticia': created job" in out and "language es-ES detected" in out
