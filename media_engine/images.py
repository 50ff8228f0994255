"""Pictures from Flux (diffusers), with the topic's LoRA.

torch and diffusers are imported inside the functions: django-q2 workers fork after
importing this module, and CUDA must never be initialised before the fork. The loaded
pipeline is cached per process, so a worker pays the load once and then switches LoRA
adapters per topic without reloading the base model.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import Cancelled, MediaError

if TYPE_CHECKING:
    from diffusers import FluxPipeline
    from PIL.Image import Image

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[float], None]
CancelCheck = Callable[[], bool]

# Flux packs 8x-downsampled latents into 2x2 patches, so both sides must be multiples of 16.
SIDE_MULTIPLE = 16
# Seeds of different prompts must never collide while a segment has fewer candidates than this.
SEED_STRIDE = 1000

_PIPELINES: dict[tuple[str, str, bool], FluxPipeline] = {}


@dataclass(frozen=True)
class GeneratedImage:
    path: Path
    seed: int


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_pipeline(model_dir: Path, *, device: str | None = None, cpu_offload: bool = False) -> FluxPipeline:
    """The Flux pipeline in `model_dir` (a diffusers folder), loaded once per process and device.

    `cpu_offload` keeps only the running sub-model on the GPU (for cards under ~40 GB); it is
    ignored without an accelerator because diffusers raises there.
    """
    import torch
    from diffusers import FluxPipeline

    device = device or default_device()
    on_cuda = device.startswith("cuda")
    offload = cpu_offload and on_cuda and torch.cuda.is_available()
    model_dir = Path(model_dir)
    key = (str(model_dir.resolve()), device, offload)
    if key in _PIPELINES:
        return _PIPELINES[key]
    if not (model_dir / "model_index.json").is_file():
        raise MediaError(f"Flux model not found: {model_dir} is not a diffusers folder (no model_index.json)")
    # Flux ships in bf16, which halves GPU memory against fp32; CPU kernels are fastest in fp32.
    dtype = torch.bfloat16 if on_cuda else torch.float32
    try:
        pipe = FluxPipeline.from_pretrained(model_dir, local_files_only=True, dtype=dtype)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as error:
        raise MediaError(f"cannot load the Flux model in {model_dir}: {error}") from error
    if offload:
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)  # progress goes through on_progress, not tqdm in worker logs
    _PIPELINES[key] = pipe
    return pipe


def adapter_name(lora_name: str) -> str:
    """A peft adapter name for a LoRA file or folder name (peft rejects dots in names)."""
    stem = lora_name[: -len(".safetensors")] if lora_name.endswith(".safetensors") else lora_name
    return re.sub(r"\W", "_", stem) or "lora"


def apply_lora(pipe: FluxPipeline, lora_dir: Path, lora_name: str, weight: int) -> None:
    """Make `<lora_dir>/<lora_name>` (a folder or a .safetensors file) the only active adapter.

    Adapters stay loaded once read, so switching topics back and forth costs no disk reads
    (a LoRA file replaced under the same name is picked up by the next worker process);
    `weight` is the topic's percentage (100 = the LoRA's trained strength).
    """
    name = adapter_name(lora_name)
    if name not in _loaded_adapters(pipe):
        path = _lora_path(Path(lora_dir), lora_name)
        if path.is_file():
            source, weight_name = str(path.parent), path.name
        else:
            source, weight_name = str(path), None  # diffusers picks the folder's one .safetensors
        try:
            with warnings.catch_warnings():
                # peft warns on every adapter after the first; several adapters is the point here.
                warnings.filterwarnings("ignore", "Already found a `peft_config`", UserWarning)
                pipe.load_lora_weights(
                    source, weight_name=weight_name, adapter_name=name, local_files_only=True
                )
        except (OSError, ValueError, KeyError, RuntimeError) as error:
            raise MediaError(f"cannot load LoRA {lora_name!r} from {path}: {error}") from error
    pipe.enable_lora()  # undo an earlier remove_lora
    pipe.set_adapters([name], adapter_weights=[weight / 100])


def remove_lora(pipe: FluxPipeline) -> None:
    """Generate with the base model only; loaded adapters are kept for later topics."""
    if _loaded_adapters(pipe):
        pipe.disable_lora()


def generate_candidates(
    prompts: Sequence[str],
    *,
    model_dir: Path,
    width: int,
    height: int,
    candidates: int,
    seed: int,
    out_dir: Path,
    steps: int = 28,
    guidance: float = 3.5,
    lora_dir: Path | None = None,
    lora_name: str = "",
    lora_weight: int = 100,
    device: str | None = None,
    cpu_offload: bool = False,
    batch_size: int = 1,
    on_progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> list[list[GeneratedImage]]:
    """`candidates` PNGs per prompt, each from its own seed `seed + prompt_index * 1000 + k`.

    Files are named `<prompt index>_<seed>.png`; existing ones are kept, so a rerun after a
    crash only renders what is missing. `batch_size` images of one prompt share a forward
    pass (faster on a big GPU); each still gets its own generator, so its seed reproduces it.
    """
    if not 1 <= candidates <= SEED_STRIDE:
        raise MediaError(f"candidates per segment must be 1-{SEED_STRIDE}, got {candidates}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = [
        [_candidate(out_dir, index, seed + index * SEED_STRIDE + k) for k in range(candidates)]
        for index in range(len(prompts))
    ]
    missing = [(index, image) for index, row in enumerate(plan) for image in row if not image.path.exists()]
    if not missing:
        if on_progress:
            on_progress(1.0)
        return plan
    pipe = _prepared_pipeline(model_dir, device, cpu_offload, lora_dir, lora_name, lora_weight)
    width, height = round_side(width), round_side(height)
    done = 0
    for index, prompt in enumerate(prompts):
        todo = [image for image_index, image in missing if image_index == index]
        for start in range(0, len(todo), max(1, batch_size)):
            chunk = todo[start : start + max(1, batch_size)]
            pictures = _render(
                pipe,
                prompt,
                [image.seed for image in chunk],
                width=width,
                height=height,
                steps=steps,
                guidance=guidance,
                cancel=cancel,
                on_step=_step_reporter(on_progress, done, len(chunk), len(missing), steps),
            )
            for image, picture in zip(chunk, pictures, strict=True):
                _save_png(picture, image.path)
            done += len(chunk)
    if on_progress:
        on_progress(1.0)
    return plan


def cover_image(
    prompt: str,
    *,
    model_dir: Path,
    width: int,
    height: int,
    seed: int,
    out_path: Path,
    steps: int = 28,
    guidance: float = 3.5,
    lora_dir: Path | None = None,
    lora_name: str = "",
    lora_weight: int = 100,
    device: str | None = None,
    cpu_offload: bool = False,
    on_progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> Path:
    """One picture from the topic's cover prompt, at `out_path` (kept if it already exists)."""
    out_path = Path(out_path)
    if out_path.exists():
        return out_path
    pipe = _prepared_pipeline(model_dir, device, cpu_offload, lora_dir, lora_name, lora_weight)
    [picture] = _render(
        pipe,
        prompt,
        [seed],
        width=round_side(width),
        height=round_side(height),
        steps=steps,
        guidance=guidance,
        cancel=cancel,
        on_step=_step_reporter(on_progress, 0, 1, 1, steps),
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    _save_png(picture, out_path)
    return out_path


def round_side(pixels: int) -> int:
    """The nearest multiple of 16 (at least 16), as Flux needs."""
    return max(SIDE_MULTIPLE, int(round(pixels / SIDE_MULTIPLE)) * SIDE_MULTIPLE)


def _prepared_pipeline(
    model_dir: Path,
    device: str | None,
    cpu_offload: bool,
    lora_dir: Path | None,
    lora_name: str,
    lora_weight: int,
) -> FluxPipeline:
    pipe = load_pipeline(model_dir, device=device, cpu_offload=cpu_offload)
    if lora_name:
        if lora_dir is None:
            raise MediaError(f"LoRA {lora_name!r} is set but no LoRA folder is configured")
        apply_lora(pipe, lora_dir, lora_name, lora_weight)
    else:
        remove_lora(pipe)
    return pipe


def _render(
    pipe: FluxPipeline,
    prompt: str,
    seeds: list[int],
    *,
    width: int,
    height: int,
    steps: int,
    guidance: float,
    cancel: CancelCheck | None,
    on_step: Callable[[int], None],
) -> list[Image]:
    import torch

    def step_end(_pipe: Any, step: int, _timestep: Any, tensors: dict) -> dict:
        # Raising here leaves the denoising loop at once; nothing is half-written to disk.
        if cancel is not None and cancel():
            raise Cancelled("cancelled while generating pictures")
        on_step(step + 1)
        return tensors

    if cancel is not None and cancel():
        raise Cancelled("cancelled while generating pictures")
    # CPU generators: the same seed gives the same starting noise on any GPU or on CPU.
    generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
    try:
        result = pipe(
            prompt=prompt,
            height=height,
            width=width,
            num_inference_steps=steps,
            guidance_scale=guidance,
            num_images_per_prompt=len(seeds),
            generator=generators,
            output_type="pil",
            callback_on_step_end=step_end,
            max_sequence_length=512,
        )
    except torch.cuda.OutOfMemoryError as error:
        torch.cuda.empty_cache()
        raise MediaError(
            f"the GPU ran out of memory generating {len(seeds)} picture(s) at {width}x{height}",
            permanent=False,
        ) from error
    return list(result.images)


def _step_reporter(
    on_progress: ProgressCallback | None,
    done: int,
    in_chunk: int,
    total: int,
    steps: int,
) -> Callable[[int], None]:
    """Turns "step s of this chunk" into the fraction of all missing images done."""

    def report_step(steps_done: int) -> None:
        if on_progress is not None:
            on_progress(min(1.0, (done + in_chunk * steps_done / max(1, steps)) / total))

    return report_step


def _candidate(out_dir: Path, prompt_index: int, image_seed: int) -> GeneratedImage:
    return GeneratedImage(out_dir / f"{prompt_index:03d}_{image_seed}.png", image_seed)


def _save_png(picture: Image, path: Path) -> None:
    # Written under a temporary name and renamed, so a crash never leaves a truncated PNG
    # that the idempotent rerun would then take as done.
    partial = path.with_name(path.name + ".part")
    picture.save(partial, format="PNG")
    partial.replace(path)


def _loaded_adapters(pipe: FluxPipeline) -> set[str]:
    return {name for names in pipe.get_list_adapters().values() for name in names}


def _lora_path(lora_dir: Path, lora_name: str) -> Path:
    for candidate in (lora_dir / lora_name, lora_dir / f"{lora_name}.safetensors"):
        if candidate.exists():
            return candidate
    raise MediaError(f"LoRA {lora_name!r} not found in {lora_dir}")
