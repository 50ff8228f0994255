"""`manage.py benchmark images`: seconds per image of Flux.1-dev on this GPU.

It times a pipeline from media_engine.images' own loader (real weights), or a full-size
Flux.1-dev built with random weights. torch and diffusers are imported inside the functions,
so importing this module (e.g. for `manage.py benchmark --help`) costs nothing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from media_engine.errors import MediaError
from media_engine.images import load_pipeline, round_side

if TYPE_CHECKING:
    from diffusers import FluxPipeline


def images_benchmark(
    *,
    random_weights: bool,
    steps: int = 28,
    width: int = 1360,
    height: int = 768,
    batches: Sequence[int] = (1, 4),
    model_dir: Path | None = None,
) -> list[str]:
    """Seconds per image of Flux.1-dev on this GPU, one `s_per_image=<x> batch=<n>` line per batch size.

    With `random_weights` the full-size transformer and VAE are built with random weights in
    bf16 (no download, no text encoders: random prompt embeddings of the real shapes), which
    times exactly the same arithmetic as the real model. Otherwise the model in `model_dir` runs.
    """
    import torch

    if not torch.cuda.is_available():
        raise MediaError("images benchmark needs an NVIDIA GPU")
    if random_weights:
        pipe = _random_flux_dev("cuda")
    elif model_dir is None:
        raise MediaError("images benchmark with real weights needs model_dir")
    else:
        pipe = load_pipeline(model_dir, device="cuda")
    return time_batches(
        pipe,
        device="cuda",
        random_embeddings=random_weights,
        steps=steps,
        width=width,
        height=height,
        batches=batches,
    )


def time_batches(
    pipe: FluxPipeline,
    *,
    device: str,
    random_embeddings: bool,
    steps: int,
    width: int,
    height: int,
    batches: Sequence[int],
) -> list[str]:
    """Time `pipe` once per batch size after a short warm-up; the benchmark's measuring part."""
    import torch

    width, height = round_side(width), round_side(height)
    dtype = pipe.transformer.dtype
    embed_dim = pipe.transformer.config.joint_attention_dim
    pooled_dim = pipe.transformer.config.pooled_projection_dim

    def run(batch: int, run_steps: int) -> None:
        kwargs: dict[str, Any] = dict(
            height=height,
            width=width,
            num_inference_steps=run_steps,
            guidance_scale=3.5,
            generator=torch.Generator(device).manual_seed(0),
            output_type="pil",
        )
        if random_embeddings:
            # 512 T5 tokens is what the real pipeline feeds the transformer (max_sequence_length=512).
            kwargs["prompt_embeds"] = torch.randn(batch, 512, embed_dim, device=device, dtype=dtype)
            kwargs["pooled_prompt_embeds"] = torch.randn(batch, pooled_dim, device=device, dtype=dtype)
        else:
            kwargs["prompt"] = ["a lighthouse on a cliff at sunset, photograph"] * batch
        images = pipe(**kwargs).images
        if len(images) != batch:
            raise MediaError(f"benchmark asked for {batch} images and got {len(images)}")

    def synchronize() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    lines = []
    run(1, 2)  # warm-up: CUDA context, kernel selection, allocator
    for batch in batches:
        synchronize()
        started = time.perf_counter()
        run(batch, steps)
        synchronize()
        elapsed = time.perf_counter() - started
        lines.append(f"s_per_image={elapsed / batch:.3f} batch={batch}")
    return lines


@contextlib.contextmanager
def random_weights_on(device: str):
    """Models made inside get random bf16 weights directly on `device`, as real weights are loaded:
    fp32 on the CPU first would need several times the memory and minutes of initialisation."""
    import torch

    previous_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous_dtype)


def _random_flux_dev(device: str) -> FluxPipeline:
    """Flux.1-dev's transformer and VAE at full size with random bf16 weights, built on the GPU."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    # The 12B parameters are made directly as bf16 on the GPU (see random_weights_on).
    with random_weights_on(device):
        transformer = FluxTransformer2DModel(
            patch_size=1,
            in_channels=64,
            num_layers=19,
            num_single_layers=38,
            attention_head_dim=128,
            num_attention_heads=24,
            joint_attention_dim=4096,
            pooled_projection_dim=768,
            guidance_embeds=True,
            axes_dims_rope=(16, 56, 56),
        )
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            latent_channels=16,
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=2,
            norm_num_groups=32,
            act_fn="silu",
            sample_size=1024,
            scaling_factor=0.3611,
            shift_factor=0.1159,
            use_quant_conv=False,
            use_post_quant_conv=False,
        )
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    pipe = FluxPipeline(
        scheduler=scheduler,
        vae=vae,
        transformer=transformer,
        text_encoder=None,
        tokenizer=None,
        text_encoder_2=None,
        tokenizer_2=None,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
