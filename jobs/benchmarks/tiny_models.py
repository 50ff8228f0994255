"""Tiny random models the benchmarks build at run time, in the real on-disk formats, so that the
real loading code runs offline in a second or two (the tests build the same ones: tests/media_engine/
tiny_models.py). Sizes follow the libraries' own fast tests (diffusers' Flux `get_dummy_components`);
the tokenizers are a WordLevel vocabulary of a few words because no tokenizer may be downloaded.
torch and diffusers are imported inside the functions."""

from __future__ import annotations

from pathlib import Path

TINY_WORDS = [
    "a",
    "an",
    "the",
    "of",
    "on",
    "in",
    "cat",
    "dog",
    "red",
    "blue",
    "sky",
    "hill",
    "sea",
    "old",
    "house",
    "painting",
    "photo",
    "lighthouse",
    "sunset",
    "garden",
]


def word_tokenizer(specials: list[str], model_max_length: int):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(specials + TINY_WORDS)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        pad_token="<pad>",
        model_max_length=model_max_length,
    )


def build_tiny_flux(model_dir: Path, *, vae_levels: int = 1) -> Path:
    """A random FluxPipeline a few hundred kB big, saved with `save_pretrained` to `model_dir`.

    Its VAE has `vae_levels` levels: 1 works on the picture's own pixels (the tests' small frames);
    4 shrinks the latent 8 times each way as Flux.1's does, so full-size frames stay quick on a CPU."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8],
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=2,
            pad_token_id=1,
            hidden_size=32,
            intermediate_size=37,
            layer_norm_eps=1e-05,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=64,
            hidden_act="gelu",
            projection_dim=32,
        )
    )
    text_encoder_2 = T5EncoderModel(
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
    vae = AutoencoderKL(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        block_out_channels=(4,) * vae_levels,
        layers_per_block=1,
        latent_channels=1,
        norm_num_groups=1,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5035,
    )
    pipe = FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=word_tokenizer(["<s>", "<pad>", "</s>", "<unk>"], 77),
        text_encoder_2=text_encoder_2,
        tokenizer_2=word_tokenizer(["<pad>", "</s>", "<unk>"], 512),
        transformer=transformer,
    )
    pipe.save_pretrained(model_dir)
    return model_dir
