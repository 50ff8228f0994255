"""Moving pictures through the real diffusers loader and LTX image-to-video pipeline, on a tiny random
LTX-Video model; and the benchmark's parts that run without a GPU."""

from pathlib import Path

import pytest
from PIL import Image

from jobs.benchmarks import animation as i2v_benchmark
from media_engine import animation, ffmpeg
from media_engine.errors import Cancelled, MediaError
from tests.media_engine.tiny_models import build_tiny_ltx

TINY = dict(fps=24, max_frames=17, max_side=64, steps=2, device="cpu")


@pytest.fixture(scope="module")
def ltx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_ltx(tmp_path_factory.mktemp("ltx") / "tiny-ltx")


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    path = tmp_path / "picture.png"
    Image.new("RGB", (136, 76), (200, 40, 30)).save(path)
    return path


def test_frames_cover_the_segment_in_the_models_steps_up_to_the_longest_clip() -> None:
    assert animation.frame_count(5000, fps=24, max_frames=161) == 121  # 120 frames, 8k+1
    assert animation.frame_count(5100, fps=24, max_frames=161) == 129
    assert animation.frame_count(100, fps=24, max_frames=161) == 9  # never shorter than one latent step
    assert animation.frame_count(60000, fps=24, max_frames=161) == 161  # compose loops the rest
    assert animation.frame_count(60000, fps=24, max_frames=100) == 97


def test_clip_size_keeps_the_pictures_shape_within_the_longest_side() -> None:
    assert animation.clip_size(1360, 768, max_side=768) == (768, 448)
    assert animation.clip_size(768, 1360, max_side=768) == (448, 768)
    assert animation.clip_size(320, 176, max_side=768) == (320, 192)  # the pipeline wants multiples of 32


def test_a_moving_clip_starts_from_the_picture_and_lasts_the_segment(
    ltx_dir: Path, picture: Path, tmp_path: Path
) -> None:
    fractions: list[float] = []
    clip = animation.animate(
        picture,
        "a red house on the hill",
        model_dir=ltx_dir,
        duration_ms=600,
        out_path=tmp_path / "clip.mp4",
        seed=3,
        on_progress=fractions.append,
        **TINY,
    )
    info = ffmpeg.probe(clip)
    [video] = [stream for stream in info["streams"] if stream["codec_type"] == "video"]
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 64, 32)
    assert int(video["nb_frames"]) == 17  # 600 ms at 24 fps: 15 frames, so 4k+1 of the tiny VAE
    assert fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert not list(tmp_path.glob("*.part*")) and not list(tmp_path.glob("*-frames"))
    # An existing clip is kept (a rerun after a crash makes only what is missing).
    mtime = clip.stat().st_mtime_ns
    animation.animate(
        picture, "another prompt", model_dir=ltx_dir, duration_ms=600, out_path=clip, seed=3, **TINY
    )
    assert clip.stat().st_mtime_ns == mtime


def test_cancelling_stops_inside_the_denoising_loop(ltx_dir: Path, picture: Path, tmp_path: Path) -> None:
    with pytest.raises(Cancelled):
        animation.animate(
            picture,
            "a cat",
            model_dir=ltx_dir,
            duration_ms=600,
            out_path=tmp_path / "c.mp4",
            seed=1,
            cancel=lambda: True,
            **TINY,
        )
    assert not (tmp_path / "c.mp4").exists()


def test_a_folder_without_a_model_is_refused_clearly(picture: Path, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="image-to-video model not found"):
        animation.animate(
            picture,
            "a cat",
            model_dir=tmp_path / "nothing",
            duration_ms=600,
            out_path=tmp_path / "c.mp4",
            seed=1,
            **TINY,
        )


def test_benchmark_refuses_clearly_without_a_gpu() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this host has a GPU; the benchmark itself is run by hand")
    with pytest.raises(MediaError, match="i2v benchmark needs an NVIDIA GPU"):
        i2v_benchmark.i2v_benchmark()


def test_benchmark_timing_runs_from_random_embeddings_without_a_text_encoder(ltx_dir: Path) -> None:
    # The benchmark's measuring half, on the tiny transformer and VAE with no T5 at all, as it runs
    # full size on a GPU host.
    from diffusers import LTXImageToVideoPipeline

    full = animation.load_pipeline(ltx_dir, device="cpu")
    bare = LTXImageToVideoPipeline(
        scheduler=full.scheduler,
        vae=full.vae,
        transformer=full.transformer,
        text_encoder=None,
        tokenizer=None,
    )
    [line] = i2v_benchmark.time_clips(bare, device="cpu", steps=2, width=64, height=32, frames=9, fps=24)
    figures = dict(part.split("=") for part in line.split())
    assert float(figures["s_per_clip"]) > 0 and figures["frames"] == "9" and figures["size"] == "64x32"


def test_benchmark_builds_the_full_size_ltx_video_architecture() -> None:
    # On the meta device: shapes only, no memory, so the real sizes can be checked anywhere.
    pipe = i2v_benchmark.random_ltx_video("meta")
    transformer_params = sum(p.numel() for p in pipe.transformer.parameters())
    assert 1.8e9 < transformer_params < 2.0e9  # LTX-Video: 1.9 B
    assert str(pipe.transformer.dtype) == "torch.bfloat16"
    assert pipe.vae_spatial_compression_ratio == 32 and pipe.vae_temporal_compression_ratio == 8


def test_importing_the_animation_modules_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, media_engine.animation, jobs.benchmarks.animation; "
        "sys.exit(1 if 'torch' in sys.modules or 'diffusers' in sys.modules else 0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
