"""`manage.py benchmark i2v`: seconds per moving clip of LTX-Video (image-to-video) on this GPU.

It times a full-size LTX-Video 2B transformer and video VAE built with random weights (no
download, no T5 encoder: random prompt embeddings of the real shapes), which is the same
arithmetic as the real model. torch and diffusers are imported inside the functions, so
importing this module (e.g. for `manage.py benchmark --help`) costs nothing.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from jobs.benchmarks.images import random_weights_on
from media_engine.animation import clip_size
from media_engine.errors import MediaError

if TYPE_CHECKING:
    from diffusers import LTXImageToVideoPipeline

# What the real T5-XXL encoder hands the transformer: 128 tokens (the pipeline's default) of 4096.
PROMPT_TOKENS = 128
PROMPT_DIM = 4096


def i2v_benchmark(
    *,
    steps: int = 40,
    width: int = 768,
    height: int = 448,
    frames: int = 121,
    fps: int = 24,
    runs: int = 2,
) -> list[str]:
    """Seconds per clip of the full-size model on this GPU, e.g. `s_per_clip=31.2 frames=121 size=768x448
    steps=40` (a 5 s segment at the default I2V_* settings of a 16:9 picture)."""
    import torch

    if not torch.cuda.is_available():
        raise MediaError(
            "i2v benchmark needs an NVIDIA GPU: the figure is for GPU hosts (a 2B video model is not run "
            "on CPUs), and this host has no CUDA device"
        )
    pipe = random_ltx_video("cuda")
    return time_clips(
        pipe, device="cuda", steps=steps, width=width, height=height, frames=frames, fps=fps, runs=runs
    )


def time_clips(
    pipe: LTXImageToVideoPipeline,
    *,
    device: str,
    steps: int,
    width: int,
    height: int,
    frames: int,
    fps: int,
    runs: int = 1,
    guidance: float = 3.0,
) -> list[str]:
    """Time `pipe` (no text encoder needed: random prompt embeddings) making `runs` clips from a
    random picture after a short warm-up; the benchmark's measuring part."""
    import numpy as np
    import torch
    from PIL import Image

    width, height = clip_size(width, height, max_side=max(width, height))
    dtype = pipe.transformer.dtype
    tokens, dim = PROMPT_TOKENS, pipe.transformer.config.caption_channels
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8))

    def run(run_steps: int, run_frames: int) -> int:
        embeddings = {
            "prompt_embeds": torch.randn(1, tokens, dim, device=device, dtype=dtype),
            "prompt_attention_mask": torch.ones(1, tokens, device=device, dtype=torch.long),
            "negative_prompt_embeds": torch.randn(1, tokens, dim, device=device, dtype=dtype),
            "negative_prompt_attention_mask": torch.ones(1, tokens, device=device, dtype=torch.long),
        }
        result = pipe(
            image=picture,
            width=width,
            height=height,
            num_frames=run_frames,
            frame_rate=fps,
            num_inference_steps=run_steps,
            guidance_scale=guidance,
            generator=torch.Generator("cpu").manual_seed(0),
            output_type="np",
            **embeddings,
        )
        return len(result.frames[0])

    def synchronize() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    run(1, pipe.vae_temporal_compression_ratio + 1)  # warm-up: CUDA context, kernel selection, allocator
    synchronize()
    started = time.perf_counter()
    for _ in range(runs):
        made = run(steps, frames)
        if made != frames:
            raise MediaError(f"benchmark asked for {frames} frames and got {made}")
    synchronize()
    elapsed = (time.perf_counter() - started) / runs
    return [f"s_per_clip={elapsed:.3f} frames={frames} size={width}x{height} steps={steps}"]


def random_ltx_video(device: str) -> LTXImageToVideoPipeline:
    """LTX-Video's 2B transformer and its video VAE at full size (diffusers' default configs, those of
    the 0.9 releases) with random bf16 weights, built on `device`."""
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXImageToVideoPipeline,
        LTXVideoTransformer3DModel,
    )

    with random_weights_on(device):
        transformer = LTXVideoTransformer3DModel(
            in_channels=128,
            out_channels=128,
            patch_size=1,
            patch_size_t=1,
            num_attention_heads=32,
            attention_head_dim=64,
            cross_attention_dim=2048,
            num_layers=28,
            caption_channels=PROMPT_DIM,
        )
        vae = AutoencoderKLLTXVideo()
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=1.0,
        use_dynamic_shifting=True,
        base_shift=0.95,
        max_shift=2.05,
        base_image_seq_len=1024,
        max_image_seq_len=4096,
        shift_terminal=0.1,
    )
    pipe = LTXImageToVideoPipeline(
        scheduler=scheduler, vae=vae, transformer=transformer, text_encoder=None, tokenizer=None
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
