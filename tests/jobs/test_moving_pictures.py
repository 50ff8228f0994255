"""Moving pictures: the segments a job's `animate` lists get a clip made from their picture by the
image-to-video model (a tiny random LTX-Video the test builds, on the CPU), shown like a real clip."""

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage

from accounts.brand import Brand
from jobs import services, storyboard
from jobs.models import FRAME_SIZES, ExecutionStatus, JobSplit, Orientation
from jobs.options import check_job_extra
from jobs.render import loop, steps
from media_engine import animation, ffmpeg
from tests.factories import make_preset_job
from tests.media_engine.tiny_models import build_tiny_ltx

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture(scope="module")
def ltx_dir(tmp_path_factory):
    return build_tiny_ltx(tmp_path_factory.mktemp("ltx") / "tiny-ltx")


@pytest.fixture
def job(settings, monkeypatch):
    monkeypatch.setitem(FRAME_SIZES, Orientation.HORIZONTAL, (320, 176))
    settings.SEGMENT_TARGET_MS = 1500  # two segments
    return make_preset_job(title="动图", speech_speed=1.3, extra={"animate": [0]})


@pytest.fixture
def i2v(settings, ltx_dir):
    settings.I2V_MODEL_DIR = str(ltx_dir)
    settings.I2V_STEPS = 2
    settings.I2V_FPS = 8
    settings.I2V_MAX_FRAMES = 9
    settings.I2V_MAX_SIDE = 64
    settings.I2V_DEVICE = "cpu"


@pytest.fixture
def made(monkeypatch):
    """The clips the model makes (the real function runs; this only counts)."""
    calls: list[str] = []
    real = animation.animate

    def counted(picture_path, prompt, **kwargs):
        calls.append(prompt)
        return real(picture_path, prompt, **kwargs)

    monkeypatch.setattr(animation, "animate", counted)
    return calls


def render(job):
    return loop.execution_run(execution=services.execution_create(job=job))


def test_a_chosen_segment_shows_a_moving_clip_made_from_its_picture(job, i2v, made):
    execution = render(job)
    assert execution.status == ExecutionStatus.SUCCESS, execution.detail
    first, second = job.splits.select_related("clip").order_by("index")
    assert made == [first.prompt or first.text]
    assert first.moving_clip and first.animation["picture"] == first.selected
    assert default_storage.exists(first.moving_clip)
    assert second.animation == {} and second.shown == (second.selected, "still")
    clip_info = ffmpeg.probe(default_storage.path(first.moving_clip))
    assert [int(s["nb_frames"]) for s in clip_info["streams"] if s["codec_type"] == "video"] == [9]
    # The composition shows it as it shows a real clip (from its first frame), the other segment as a still.
    visuals, _joins, split_of = steps.compose_visuals(job, Brand.of(job.account), [])
    kinds = {(split_of[n], visual.kind, visual.offset_ms) for n, visual in enumerate(visuals)}
    assert kinds == {(0, "clip", 0), (1, "still", 0)}
    assert visuals[0].path.read_bytes() == default_storage.open(first.moving_clip).read()
    shots = execution.steps["compose"]["data"]["timeline"]["shots"]
    assert [shot["kind"] for shot in shots] == ["clip", "still"]
    video = default_storage.path(execution.results["video"])
    assert (
        abs(ffmpeg.duration(video) - ffmpeg.duration(default_storage.path(execution.results["narration"])))
        < 0.1
    )
    # A picture the operator chooses afterwards is shown as it is, until a render animates it.
    first.selected = second.selected
    first.save()
    assert JobSplit.objects.get(pk=first.pk).shown == (second.selected, "still")


def test_rerender_reuses_the_clip_and_a_new_prompt_makes_it_again(job, i2v, made):
    first_render = render(job)
    assert first_render.status == ExecutionStatus.SUCCESS, first_render.detail
    clip_key = job.splits.get(index=0).moving_clip
    assert len(made) == 1

    again = render(job)
    assert again.status == ExecutionStatus.SUCCESS, again.detail
    assert again.steps["animation"]["status"] == "reused" and again.steps["compose"]["status"] == "reused"
    assert len(made) == 1 and job.splits.get(index=0).moving_clip == clip_key

    # The other segment's prompt is no input of the clip: the step runs and finds its clip.
    storyboard.split_update(split_row=job.splits.get(index=1), prompt="a blue sky")
    other = render(job)
    assert other.status == ExecutionStatus.SUCCESS, other.detail
    assert len(made) == 1 and job.splits.get(index=0).moving_clip == clip_key

    storyboard.split_update(split_row=job.splits.get(index=0), prompt="a red house on the hill")
    changed = render(job)
    assert changed.status == ExecutionStatus.SUCCESS, changed.detail
    assert changed.steps["animation"]["status"] == "done" and changed.steps["compose"]["status"] == "done"
    assert made[1:] == ["a red house on the hill"]
    new_key = job.splits.get(index=0).moving_clip
    assert new_key and new_key != clip_key and default_storage.exists(new_key)
    assert changed.results["video"] != again.results["video"]

    # Taken off the list, the segment shows its picture again.
    job.extra = {}
    job.save()
    plain = render(job)
    assert plain.status == ExecutionStatus.SUCCESS, plain.detail
    assert job.splits.get(index=0).shown[1] == "still" and len(made) == 2


def test_without_a_model_the_picture_stays_and_the_detail_says_so(job, settings, made):
    settings.I2V_MODEL_DIR = ""
    job.extra = {"animate": [0, 7]}
    job.save()
    execution = render(job)
    assert execution.status == ExecutionStatus.SUCCESS, execution.detail
    assert "still pictures instead of moving clips (no I2V_MODEL_DIR)" in execution.detail
    assert "animate lists segment(s) 7, which the storyboard does not have" in execution.detail
    assert made == [] and all(split.shown[1] == "still" for split in job.splits.all())


@pytest.mark.parametrize("value", [[0, 0], [-1], "all", [True], [0.5], list(range(501))])
def test_animate_must_list_distinct_segment_indexes(value):
    with pytest.raises(ValidationError) as raised:
        check_job_extra({"animate": value})
    assert "Must be a list of distinct whole numbers from 0 to 9999" in str(raised.value)


def test_animate_is_kept_sorted():
    assert check_job_extra({"animate": [3, 0]}) == {"animate": [0, 3]}
