"""Moving pictures: a short clip made from a segment's picture and prompt (image-to-video).

The model is LTX-Video through diffusers' `LTXImageToVideoPipeline`. Among the image-to-video
pipelines diffusers maintains (LTX-Video, Wan 2.1/2.2, CogVideoX, HunyuanVideo), LTX-Video is
the small and fast one: a 2B transformer (its authors report faster than real time at 768x512
on an H100) that fits a 24 GB card in bf16 with its T5 encoder offloaded, where Wan 2.1 (14B)
and CogVideoX (5B) are several times larger and slower per clip. A segment needs a clip of a
few seconds, which is what LTX-Video is made for. The loader takes a diffusers LTX-Video folder.

As in `images`, torch and diffusers are imported inside the functions (django-q2 forks after
importing this module; CUDA must never start before the fork), and the loaded pipeline is
cached per process.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import ffmpeg
from .errors import Cancelled, MediaError

if TYPE_CHECKING:
    from diffusers import LTXImageToVideoPipeline
    from PIL.Image import Image

ProgressCallback = Callable[[float], None]
CancelCheck = Callable[[], bool]

# LTX-Video's VAE: 32x smaller in each side, 8x fewer frames (a clip has 8k+1 frames). The pipeline
# wants sides in multiples of 32 whatever its VAE; a loaded one reports its own temporal ratio.
SPATIAL_RATIO = 32
TEMPORAL_RATIO = 8

_PIPELINES: dict[tuple[str, str, bool, bool], LTXImageToVideoPipeline] = {}


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_pipeline(
    model_dir: Path,
    *,
    device: str | None = None,
    cpu_offload: bool = False,
    vae_tiling: bool = False,
) -> LTXImageToVideoPipeline:
    """The LTX-Video image-to-video pipeline in `model_dir` (a diffusers folder), loaded once per
    process and settings.

    `cpu_offload` keeps only the running sub-model on the GPU (the T5 encoder alone is ~9 GB in
    bf16); it is ignored without an accelerator, where diffusers raises. `vae_tiling` decodes the
    video in overlapping tiles, which caps the decoder's memory on small cards.
    """
    import torch
    from diffusers import LTXImageToVideoPipeline

    device = device or default_device()
    on_cuda = device.startswith("cuda")
    offload = cpu_offload and on_cuda and torch.cuda.is_available()
    model_dir = Path(model_dir)
    key = (str(model_dir.resolve()), device, offload, vae_tiling)
    if key in _PIPELINES:
        return _PIPELINES[key]
    if not (model_dir / "model_index.json").is_file():
        raise MediaError(
            f"image-to-video model not found: {model_dir} is not a diffusers folder (no model_index.json)"
        )
    # LTX-Video ships in bf16; CPU kernels are fastest (and only well tested) in fp32.
    dtype = torch.bfloat16 if on_cuda else torch.float32
    try:
        pipe = LTXImageToVideoPipeline.from_pretrained(model_dir, local_files_only=True, dtype=dtype)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as error:
        raise MediaError(f"cannot load the image-to-video model in {model_dir}: {error}") from error
    if offload:
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    if vae_tiling:
        pipe.vae.enable_tiling()
    pipe.set_progress_bar_config(disable=True)  # progress goes through on_progress
    _PIPELINES[key] = pipe
    return pipe


def frame_count(duration_ms: int, *, fps: int, max_frames: int, temporal_ratio: int = TEMPORAL_RATIO) -> int:
    """Frames of a clip that covers `duration_ms` at `fps`: the model makes k*ratio+1 frames, at most
    `max_frames` (rounded down to that form); compose loops a clip shorter than its segment."""
    needed = max(1, math.ceil(duration_ms * fps / 1000))
    most = max(1, (max_frames - 1) // temporal_ratio) * temporal_ratio + 1
    return min(most, max(1, math.ceil((needed - 1) / temporal_ratio)) * temporal_ratio + 1)


def clip_size(width: int, height: int, *, max_side: int, multiple: int = SPATIAL_RATIO) -> tuple[int, int]:
    """The picture's shape with its longer side at most `max_side`, both sides multiples of the
    VAE's ratio (compose scales the clip to the frame as it does a real clip)."""
    scale = min(1.0, max_side / max(width, height))
    return (
        max(multiple, round(width * scale / multiple) * multiple),
        max(multiple, round(height * scale / multiple) * multiple),
    )


def animate(
    picture_path: Path,
    prompt: str,
    *,
    model_dir: Path,
    duration_ms: int,
    out_path: Path,
    seed: int,
    fps: int = 24,
    max_frames: int = 161,
    max_side: int = 768,
    steps: int = 40,
    guidance: float = 3.0,
    device: str | None = None,
    cpu_offload: bool = False,
    vae_tiling: bool = False,
    on_progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    timeout: float = 600.0,
) -> Path:
    """An H.264 MP4 at `out_path` that starts from the picture and moves as the prompt says, long
    enough for `duration_ms` (up to `max_frames`). An existing `out_path` is kept, so a rerun after a
    crash only makes what is missing."""
    import torch
    from PIL import Image as PILImage

    out_path = Path(out_path)
    if out_path.exists():
        return out_path
    pipe = load_pipeline(model_dir, device=device, cpu_offload=cpu_offload, vae_tiling=vae_tiling)
    with PILImage.open(picture_path) as opened:
        picture = opened.convert("RGB")
    width, height = clip_size(picture.width, picture.height, max_side=max_side)
    frames = frame_count(
        duration_ms, fps=fps, max_frames=max_frames, temporal_ratio=pipe.vae_temporal_compression_ratio
    )

    def step_end(_pipe: Any, step: int, _timestep: Any, tensors: dict) -> dict:
        if cancel is not None and cancel():
            raise Cancelled("cancelled while making a moving picture")
        if on_progress is not None:
            on_progress(min(0.95, (step + 1) / steps * 0.95))
        return tensors

    if cancel is not None and cancel():
        raise Cancelled("cancelled while making a moving picture")
    try:
        result = pipe(
            image=picture.resize((width, height), PILImage.Resampling.LANCZOS),
            prompt=prompt,
            negative_prompt="worst quality, inconsistent motion, blurry, jittery, distorted",
            width=width,
            height=height,
            num_frames=frames,
            frame_rate=fps,
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=torch.Generator("cpu").manual_seed(seed),
            output_type="pil",
            callback_on_step_end=step_end,
        )
    except torch.cuda.OutOfMemoryError as error:
        torch.cuda.empty_cache()
        raise MediaError(
            f"the GPU ran out of memory making a {frames}-frame clip at {width}x{height}; "
            "try I2V_CPU_OFFLOAD, I2V_VAE_TILING or a smaller I2V_MAX_SIDE",
            permanent=False,
        ) from error
    _write_mp4(result.frames[0], fps, out_path, timeout=timeout, cancel=cancel)
    if on_progress is not None:
        on_progress(1.0)
    return out_path


def _write_mp4(
    frames: list[Image], fps: int, out_path: Path, *, timeout: float, cancel: CancelCheck | None
) -> None:
    """Frames to an H.264 MP4, written under a temporary name and renamed (a crash never leaves a
    truncated clip that a rerun would take as done)."""
    frame_dir = out_path.with_name(out_path.stem + "-frames")
    shutil.rmtree(frame_dir, ignore_errors=True)
    frame_dir.mkdir(parents=True)
    try:
        for number, frame in enumerate(frames):
            frame.save(frame_dir / f"{number:05d}.png")
        partial = out_path.with_name(out_path.stem + ".part.mp4")
        ffmpeg.run(
            [
                "-framerate",
                str(fps),
                "-i",
                frame_dir / "%05d.png",
                "-c:v",
                "libx264",
                "-preset",
                "medium",
                "-crf",
                "16",
                "-pix_fmt",
                "yuv420p",
                "-vf",
                "pad=ceil(iw/2)*2:ceil(ih/2)*2",
                "-movflags",
                "+faststart",
                partial,
            ],
            timeout=timeout,
            cancel=cancel,
        )
        partial.replace(out_path)
    finally:
        shutil.rmtree(frame_dir, ignore_errors=True)
