"""Flux pictures through the real diffusers loader and pipeline, on a tiny random Flux model."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jobs.benchmarks import images as images_benchmark
from jobs.benchmarks.tiny_models import build_tiny_flux
from media_engine import images
from media_engine.errors import Cancelled, MediaError
from tests.media_engine.tiny_models import build_tiny_flux_lora

PROMPTS = ["a red cat on the hill", "an old lighthouse in the sunset"]
TINY = dict(width=32, height=32, steps=2, device="cpu")


@pytest.fixture(scope="module")
def flux_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_flux(tmp_path_factory.mktemp("flux") / "tiny-flux")


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory: pytest.TempPathFactory, flux_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("loras")
    build_tiny_flux_lora(flux_dir, folder / "watercolor.safetensors", seed=1)
    build_tiny_flux_lora(flux_dir, folder / "ink" / "pytorch_lora_weights.safetensors", seed=2)
    return folder


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def one_image(flux_dir: Path, out_dir: Path, **lora) -> np.ndarray:
    [[image]] = images.generate_candidates(
        ["a red cat on the hill"],
        model_dir=flux_dir,
        candidates=1,
        seed=7,
        out_dir=out_dir,
        **TINY,
        **lora,
    )
    return pixels(image.path)


def test_generate_candidates_writes_one_png_per_seed(flux_dir: Path, tmp_path: Path) -> None:
    progress: list[float] = []
    result = images.generate_candidates(
        PROMPTS,
        model_dir=flux_dir,
        candidates=2,
        seed=100,
        out_dir=tmp_path,
        on_progress=progress.append,
        **TINY,
    )
    assert [[image.seed for image in row] for row in result] == [[100, 101], [1100, 1101]]
    for row_index, row in enumerate(result):
        for image in row:
            assert image.path == tmp_path / f"{row_index:03d}_{image.seed}.png"
            with Image.open(image.path) as picture:
                assert picture.format == "PNG" and picture.size == (32, 32)
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert not list(tmp_path.glob("*.part"))
    # Different seeds start from different noise, so the candidates differ.
    assert np.abs(pixels(result[0][0].path) - pixels(result[0][1].path)).max() > 0


def test_rerun_generates_only_missing_images(flux_dir: Path, tmp_path: Path) -> None:
    first = images.generate_candidates(
        PROMPTS, model_dir=flux_dir, candidates=2, seed=5, out_dir=tmp_path, **TINY
    )
    first[1][0].path.unlink()
    kept = [image.path for row in first for image in row if image.path.exists()]
    stamps = {path: path.stat().st_mtime_ns for path in kept}

    second = images.generate_candidates(
        PROMPTS, model_dir=flux_dir, candidates=2, seed=5, out_dir=tmp_path, **TINY
    )

    assert second == first
    assert first[1][0].path.exists()
    assert all(path.stat().st_mtime_ns == stamp for path, stamp in stamps.items())


def test_same_seed_reproduces_the_picture_even_in_a_batch(flux_dir: Path, tmp_path: Path) -> None:
    alone = images.generate_candidates(
        ["a blue sea"], model_dir=flux_dir, candidates=2, seed=3, out_dir=tmp_path / "alone", **TINY
    )
    batched = images.generate_candidates(
        ["a blue sea"],
        model_dir=flux_dir,
        candidates=2,
        seed=3,
        out_dir=tmp_path / "batched",
        batch_size=2,
        **TINY,
    )
    for single, in_batch in zip(alone[0], batched[0], strict=True):
        assert np.abs(pixels(single.path) - pixels(in_batch.path)).max() <= 2


def test_sides_are_rounded_to_multiples_of_16(flux_dir: Path, tmp_path: Path) -> None:
    [[image]] = images.generate_candidates(
        ["a dog"],
        model_dir=flux_dir,
        candidates=1,
        seed=1,
        out_dir=tmp_path,
        width=41,
        height=30,
        steps=1,
        device="cpu",
    )
    with Image.open(image.path) as picture:
        assert picture.size == (48, 32)
    assert images.round_side(1360) == 1360 and images.round_side(770) == 768 and images.round_side(3) == 16


def test_pipeline_is_loaded_once_per_process(flux_dir: Path) -> None:
    assert images.load_pipeline(flux_dir, device="cpu") is images.load_pipeline(flux_dir, device="cpu")


def test_lora_changes_the_picture_and_weight_zero_does_not(
    flux_dir: Path,
    lora_dir: Path,
    tmp_path: Path,
) -> None:
    base = one_image(flux_dir, tmp_path / "base")
    styled = one_image(
        flux_dir, tmp_path / "styled", lora_dir=lora_dir, lora_name="watercolor", lora_weight=100
    )
    zero = one_image(flux_dir, tmp_path / "zero", lora_dir=lora_dir, lora_name="watercolor", lora_weight=0)
    other = one_image(flux_dir, tmp_path / "other", lora_dir=lora_dir, lora_name="ink", lora_weight=100)
    back_to_base = one_image(flux_dir, tmp_path / "again")

    assert np.abs(styled - base).max() > 8
    assert np.abs(zero - base).max() <= 1
    assert np.abs(other - styled).max() > 8
    assert np.abs(back_to_base - base).max() <= 1
    # Switching topics switched adapters on the one cached base model.
    pipe = images.load_pipeline(flux_dir, device="cpu")
    assert {"watercolor", "ink"} <= {name for names in pipe.get_list_adapters().values() for name in names}


def test_lora_file_name_with_extension_is_accepted(flux_dir: Path, lora_dir: Path, tmp_path: Path) -> None:
    named = one_image(flux_dir, tmp_path / "a", lora_dir=lora_dir, lora_name="watercolor.safetensors")
    plain = one_image(flux_dir, tmp_path / "b", lora_dir=lora_dir, lora_name="watercolor")
    assert np.abs(named - plain).max() <= 1


def test_missing_lora_is_a_permanent_error_naming_it(flux_dir: Path, lora_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="'nostalgia'") as caught:
        one_image(flux_dir, tmp_path, lora_dir=lora_dir, lora_name="nostalgia")
    assert caught.value.permanent


def test_missing_model_dir_is_an_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "FLUX.1-dev"
    with pytest.raises(MediaError, match="FLUX.1-dev") as caught:
        images.load_pipeline(missing, device="cpu")
    assert caught.value.permanent


def test_broken_model_dir_is_an_error_naming_it(tmp_path: Path) -> None:
    broken = tmp_path / "broken-flux"
    broken.mkdir()
    (broken / "model_index.json").write_text(
        '{"_class_name": "FluxPipeline", "transformer": ["diffusers", "FluxTransformer2DModel"]}'
    )
    with pytest.raises(MediaError, match="broken-flux"):
        images.load_pipeline(broken, device="cpu")


def test_cancel_stops_generation_without_leaving_files(flux_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(Cancelled):
        images.generate_candidates(
            PROMPTS, model_dir=flux_dir, candidates=2, seed=1, out_dir=tmp_path, cancel=lambda: True, **TINY
        )
    assert not list(tmp_path.iterdir())


def test_cover_image_is_one_candidate(flux_dir: Path, tmp_path: Path) -> None:
    cover = images.cover_image(
        "an old house in the garden",
        model_dir=flux_dir,
        width=64,
        height=32,
        seed=9,
        out_path=tmp_path / "cover.png",
        steps=2,
        device="cpu",
    )
    with Image.open(cover) as picture:
        assert picture.size == (64, 32)
    [[same]] = images.generate_candidates(
        ["an old house in the garden"],
        model_dir=flux_dir,
        width=64,
        height=32,
        candidates=1,
        seed=9,
        out_dir=tmp_path / "c",
        steps=2,
        device="cpu",
    )
    assert np.abs(pixels(cover) - pixels(same.path)).max() <= 1


def test_benchmark_needs_a_gpu() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this host has a GPU; the benchmark itself is run by hand")
    with pytest.raises(MediaError, match="images benchmark needs an NVIDIA GPU"):
        images_benchmark.images_benchmark(random_weights=True)


def test_benchmark_timing_runs_from_random_embeddings_without_text_encoders(flux_dir: Path) -> None:
    # The benchmark's measuring half, on the tiny transformer and VAE with no text encoders at
    # all, as it runs full size on a GPU host.
    from diffusers import FluxPipeline

    full = images.load_pipeline(flux_dir, device="cpu")
    bare = FluxPipeline(
        scheduler=full.scheduler,
        vae=full.vae,
        transformer=full.transformer,
        text_encoder=None,
        tokenizer=None,
        text_encoder_2=None,
        tokenizer_2=None,
    )
    lines = images_benchmark.time_batches(
        bare, device="cpu", random_embeddings=True, steps=2, width=32, height=32, batches=(1, 2)
    )
    assert [line.split()[1] for line in lines] == ["batch=1", "batch=2"]
    assert all(float(line.split()[0].removeprefix("s_per_image=")) > 0 for line in lines)


def test_benchmark_builds_the_full_size_flux_dev_architecture() -> None:
    # On the meta device: shapes only, no memory, so the real sizes can be checked anywhere.
    pipe = images_benchmark._random_flux_dev("meta")
    transformer_params = sum(p.numel() for p in pipe.transformer.parameters())
    vae_params = sum(p.numel() for p in pipe.vae.parameters())
    assert 11.8e9 < transformer_params < 12.0e9  # Flux.1-dev: 11.9 B
    assert 80e6 < vae_params < 90e6  # the Flux VAE: 84 M
    assert str(pipe.transformer.dtype) == "torch.bfloat16"
    assert pipe.vae.config.latent_channels == 16 and pipe.vae_scale_factor == 8


def test_importing_the_model_modules_does_not_import_torch() -> None:
    # Workers fork after import; CUDA (and torch's threads) must only start in the child.
    import subprocess
    import sys

    code = (
        "import sys, media_engine.images, media_engine.asr; "
        "print(sorted({'torch', 'diffusers', 'funasr'} & set(sys.modules)))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
    ).stdout.strip()
    assert found == "[]"
