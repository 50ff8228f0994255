"""Builders of tiny random models, saved in the real on-disk formats, so tests run the real
loading code (diffusers, peft, funasr) offline in a second or two. The tiny Flux pipeline is the
benchmarks' own (jobs.benchmarks.tiny_models), built the same way for both.

Sizes follow the libraries' own fast tests (diffusers' Flux `get_dummy_components`); the
tokenizers are a WordLevel vocabulary of a few words because no tokenizer may be downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

from jobs.benchmarks.tiny_models import word_tokenizer


def build_tiny_flux_lora(
    model_dir: Path,
    out_path: Path,
    *,
    seed: int = 1,
    rank: int = 4,
    strength: float = 10.0,
) -> Path:
    """A random LoRA on the attention projections of the tiny Flux transformer in `model_dir`,
    saved in the diffusers LoRA format as one .safetensors file at `out_path`.

    `init_lora_weights=False` makes both LoRA matrices random: peft's default zero B matrix
    would give a LoRA that changes nothing. `strength` scales the B matrices: a LoRA of
    ordinary size moves the tiny model's 32x32 output by only a few grey levels.
    """
    import torch
    from diffusers import FluxPipeline, FluxTransformer2DModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    transformer = FluxTransformer2DModel.from_pretrained(model_dir, subfolder="transformer")
    torch.manual_seed(seed)
    transformer.add_adapter(
        LoraConfig(
            r=rank,
            lora_alpha=rank,
            target_modules=["to_q", "to_k", "to_v"],
            init_lora_weights=False,
        )
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    layers = {
        key: value * strength if "lora_B" in key else value
        for key, value in get_peft_model_state_dict(transformer).items()
    }
    FluxPipeline.save_lora_weights(
        out_path.parent,
        transformer_lora_layers=layers,
        weight_name=out_path.name,
        safe_serialization=True,
    )
    return out_path


def build_tiny_ltx(model_dir: Path) -> Path:
    """A random LTX-Video image-to-video pipeline (diffusers' own fast-test sizes: a VAE 4x smaller
    in each side and in time), about half a MB, saved with `save_pretrained` to `model_dir`."""
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXImageToVideoPipeline,
        LTXVideoTransformer3DModel,
    )
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=32,
    )
    vae = AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False,) * 5,
        upsample_residual=(False,) * 4,
        upsample_factor=(1,) * 4,
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    text_encoder = T5EncoderModel(
        T5Config(
            vocab_size=64,
            d_model=32,
            d_ff=37,
            d_kv=8,
            num_heads=4,
            num_layers=2,
            relative_attention_num_buckets=8,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
    )
    pipe = LTXImageToVideoPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=word_tokenizer(["<pad>", "</s>", "<unk>"], 128),
        transformer=transformer,
    )
    pipe.save_pretrained(model_dir)
    return model_dir


# --- FunASR ------------------------------------------------------------------------------
# A model folder as ModelScope ships it: config.yaml + model.pt (+ tokens.json, am.mvn),
# which funasr's AutoModel reads when `model` is a local path.

TINY_HANZI = list(dict.fromkeys("今天气很好我们去公园散步吧你知道吗这是一个测试"))


def _write_cmvn(path: Path, dim: int) -> None:
    """A Kaldi nnet1 text CMVN (the am.mvn format): zero shift, unit scale."""
    zeros, ones = " ".join(["0"] * dim), " ".join(["1"] * dim)
    path.write_text(
        "<Nnet>\n"
        f"<Splice> {dim} {dim}\n[ 0 ]\n"
        f"<AddShift> {dim} {dim}\n<LearnRateCoef> 0 [ {zeros} ]\n"
        f"<Rescale> {dim} {dim}\n<LearnRateCoef> 0 [ {ones} ]\n"
        "</Nnet>\n",
        encoding="utf-8",
    )


def _save_funasr_dir(
    folder: Path,
    config: dict,
    model,
    tokens: list[str] | None,
    cmvn_dim: int | None,
) -> Path:
    import torch
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    torch.save(model.state_dict(), folder / "model.pt")
    if tokens is not None:
        (folder / "tokens.json").write_text(json.dumps(tokens, ensure_ascii=False), encoding="utf-8")
    if cmvn_dim is not None:
        _write_cmvn(folder / "am.mvn", cmvn_dim)
    return folder


def _sanm_encoder_conf(size: int, **extra) -> dict:
    return {
        "output_size": size,
        "attention_heads": 2,
        "linear_units": 2 * size,
        "num_blocks": 1,
        "dropout_rate": 0.0,
        "positional_dropout_rate": 0.0,
        "attention_dropout_rate": 0.0,
        "input_layer": "pe",
        "pos_enc_class": "SinusoidalPositionEncoder",
        "normalize_before": True,
        "kernel_size": 11,
        "sanm_shfit": 0,
        "selfattention_layer_type": "sanm",
        **extra,
    }


def build_tiny_paraformer(folder: Path) -> Path:
    """A random BiCifParaformer (the timestamp-predicting Paraformer of the
    paraformer-large-vad-punc release) with one encoder and one decoder block of width 16."""
    import torch
    from funasr.register import tables

    tokens = ["<blank>", "<s>", "</s>", *TINY_HANZI, "<unk>"]
    frontend_conf = {
        "fs": 16000,
        "window": "hamming",
        "n_mels": 80,
        "frame_length": 25,
        "frame_shift": 10,
        "lfr_m": 7,
        "lfr_n": 6,
        "dither": 0.0,
    }
    config = {
        "model": "BiCifParaformer",
        "model_conf": {
            "ctc_weight": 0.0,
            "lsm_weight": 0.1,
            "length_normalized_loss": True,
            "predictor_weight": 1.0,
            "predictor_bias": 1,
            "sampling_ratio": 0.75,
        },
        "encoder": "SANMEncoder",
        "encoder_conf": _sanm_encoder_conf(16),
        "decoder": "ParaformerSANMDecoder",
        "decoder_conf": {
            "attention_heads": 2,
            "linear_units": 32,
            "num_blocks": 1,
            "dropout_rate": 0.0,
            "positional_dropout_rate": 0.0,
            "self_attention_dropout_rate": 0.0,
            "src_attention_dropout_rate": 0.0,
            "att_layer_num": 1,
            "kernel_size": 11,
            "sanm_shfit": 0,
        },
        "predictor": "CifPredictorV3",
        "predictor_conf": {
            "idim": 16,
            "threshold": 1.0,
            "l_order": 1,
            "r_order": 1,
            "tail_threshold": 0.45,
            "smooth_factor2": 0.25,
            "noise_threshold2": 0.01,
            "upsample_times": 3,
            "use_cif1_cnn": False,
            "upsample_type": "cnn_blstm",
        },
        "frontend": "WavFrontend",
        "frontend_conf": frontend_conf,
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True},
        "ctc_conf": {"dropout_rate": 0.0, "ctc_type": "builtin", "reduce": True, "ignore_nan_grad": True},
    }
    torch.manual_seed(0)
    model = tables.model_classes["BiCifParaformer"](
        **config["model_conf"],
        **{key: value for key, value in config.items() if key != "model_conf"},
        vocab_size=len(tokens),
        input_size=80 * 7,
    )
    return _save_funasr_dir(folder, config, model, tokens, 80 * 7)


def build_tiny_fsmn_vad(folder: Path) -> Path:
    """A random FSMN VAD whose output layer is biased towards "speech", so it finds speech
    wherever the audio is louder than silence instead of at random."""
    import torch
    from funasr.register import tables

    config = {
        "model": "FsmnVADStreaming",
        "model_conf": {
            "sample_rate": 16000,
            "detect_mode": 1,
            "max_end_silence_time": 800,
            "max_single_segment_time": 60000,
            "window_size_ms": 200,
            "speech_noise_thres": 0.6,
            "silence_pdf_num": 1,
            "sil_pdf_ids": [0],
            "frame_in_ms": 10,
            "frame_length_ms": 25,
        },
        "encoder": "FSMN",
        "encoder_conf": {
            "input_dim": 400,
            "input_affine_dim": 16,
            "fsmn_layers": 1,
            "linear_dim": 16,
            "proj_dim": 8,
            "lorder": 4,
            "rorder": 0,
            "lstride": 1,
            "rstride": 0,
            "output_affine_dim": 16,
            "output_dim": 8,
        },
        "frontend": "WavFrontendOnline",
        "frontend_conf": {
            "fs": 16000,
            "window": "hamming",
            "n_mels": 80,
            "frame_length": 25,
            "frame_shift": 10,
            "dither": 0.0,
            "lfr_m": 5,
            "lfr_n": 1,
        },
    }
    torch.manual_seed(0)
    model = tables.model_classes["FsmnVADStreaming"](
        encoder=config["encoder"],
        encoder_conf=config["encoder_conf"],
        **config["model_conf"],
    )
    with torch.no_grad():
        last = model.encoder.out_linear2.linear
        last.weight.mul_(0.01)
        last.bias.fill_(0.0)
        last.bias[0] = -8.0  # pdf 0 is silence
    return _save_funasr_dir(folder, config, model, None, 400)


def build_tiny_ct_punc(folder: Path) -> Path:
    """A random CT-Transformer punctuation model over the tiny character vocabulary."""
    import torch
    from funasr.register import tables

    tokens = ["<unk>", "<s>", "</s>", *TINY_HANZI]
    config = {
        "model": "CTTransformer",
        "model_conf": {
            "ignore_id": 0,
            "embed_unit": 16,
            "att_unit": 16,
            "dropout_rate": 0.0,
            "punc_list": ["<unk>", "_", "，", "。", "？", "、"],
            "punc_weight": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
            "sentence_end_id": 3,
        },
        "encoder": "SANMEncoder",
        "encoder_conf": _sanm_encoder_conf(16, input_size=16, padding_idx=0),
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>"},
    }
    torch.manual_seed(0)
    model = tables.model_classes["CTTransformer"](
        encoder=config["encoder"],
        encoder_conf=config["encoder_conf"],
        vocab_size=len(tokens),
        **config["model_conf"],
    )
    with torch.no_grad():
        model.decoder.bias[0] = -8.0  # class 0 is "<unk>", which a trained model never predicts
    return _save_funasr_dir(folder, config, model, tokens, None)
