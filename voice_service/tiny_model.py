"""Tiny, randomly initialised chatterbox weights, for tests and the overhead benchmark.

The real `ChatterboxTTS` and `ChatterboxTurboTTS` classes, built with a two-layer T3
backbone and a small flow decoder in S3Gen (the speech tokenizer, speaker encoders and
vocoder keep their real shapes), so that `prepare_conditionals` and `generate` run
chatterbox's own code on a CPU in under a second. They say nothing intelligible and
never emit a stop token: cap their length with `CHATTERBOX_MAX_NEW_TOKENS`.

`from_local` always builds the full-size networks, so a directory made here carries
`oshara-tiny.json` describing the smaller shapes, and `load_tiny_model` builds the
classes with them before loading the state dicts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TINY_MARKER = "oshara-tiny.json"

# The English model: chatterbox's Llama_520M backbone with fewer, narrower layers. The
# hidden size stays 1024: T3's perceiver resampler is hard-wired to it.
TINY_TTS: dict[str, Any] = {
    "engine": "tts",
    "backbone": {"base": "Llama_520M", "num_hidden_layers": 2, "intermediate_size": 256},
    # Arguments of S3Gen's flow-matching estimator (ConditionalDecoder), in place of
    # its 4 + 12 blocks of 256 channels.
    "estimator": {
        "channels": [64],
        "attention_head_dim": 32,
        "n_blocks": 1,
        "num_mid_blocks": 1,
        "num_heads": 2,
    },
}
# Turbo: a GPT-2 backbone (no perceiver, so it can be narrow) and S3Gen's meanflow decoder.
TINY_TURBO: dict[str, Any] = {
    "engine": "turbo",
    "backbone": {"base": "GPT2_medium", "n_layer": 2, "n_embd": 128, "hidden_size": 128, "n_head": 4},
    "estimator": TINY_TTS["estimator"],
}
TINY_CONFIGS = {"tts": TINY_TTS, "turbo": TINY_TURBO}

_EN_SPECIAL_TOKENS = ["[START]", "[STOP]", "[UNK]", "[SPACE]", "[PAD]", "[SEP]", "[CLS]", "[MASK]"]
_GPT2_EOS = "<|endoftext|>"
# File names as each class's from_local() names them.
_FILES = {
    "tts": {"t3": "t3_cfg.safetensors", "s3gen": "s3gen.safetensors"},
    "turbo": {"t3": "t3_turbo_v1.safetensors", "s3gen": "s3gen_meanflow.safetensors"},
}


def _build(config: dict[str, Any]) -> tuple[Any, Any, Any]:
    """Build T3, S3Gen and VoiceEncoder with the tiny shapes (random weights)."""
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.s3gen.decoder import ConditionalDecoder
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.llama_configs import LLAMA_CONFIGS
    from chatterbox.models.t3.modules.t3_config import T3Config
    from chatterbox.models.voice_encoder import VoiceEncoder

    engine = config["engine"]
    backbone = dict(config["backbone"])
    name = f"Oshara_tiny_{engine}"
    # T3 looks its backbone config up by name in this table.
    LLAMA_CONFIGS[name] = {**LLAMA_CONFIGS[backbone.pop("base")], **backbone}
    if engine == "turbo":
        # As ChatterboxTurboTTS.from_local sets them.
        hp = T3Config(text_tokens_dict_size=50276)
        hp.speech_tokens_dict_size = 6563
        hp.input_pos_emb = None
        hp.speech_cond_prompt_len = 375
        hp.use_perceiver_resampler = False
        hp.emotion_adv = False
    else:
        hp = T3Config.english_only()
    hp.llama_config_name = name
    t3 = T3(hp)
    if engine == "turbo":
        del t3.tfmr.wte  # unused: turbo feeds embeddings, as from_local does
    meanflow = engine == "turbo"
    s3gen = S3Gen(meanflow=meanflow)
    s3gen.flow.decoder.estimator = ConditionalDecoder(
        in_channels=320,
        out_channels=80,
        causal=True,
        dropout=0.0,
        act_fn="gelu",
        meanflow=meanflow,
        **config["estimator"],
    )
    return t3, s3gen, VoiceEncoder()


def _write_tokenizer(directory: Path, engine: str) -> None:
    """A character-level tokenizer: EnTokenizer's tokenizer.json, or a Hugging Face one for turbo."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    chars = [chr(c) for c in range(32 if engine == "turbo" else 33, 127)]
    specials = [_GPT2_EOS] if engine == "turbo" else _EN_SPECIAL_TOKENS
    vocab = {token: i for i, token in enumerate(specials + chars)}
    tokenizer = Tokenizer(
        models.WordLevel(vocab=vocab, unk_token=specials[0] if engine == "turbo" else "[UNK]")
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tokenizer.add_special_tokens(specials)
    tokenizer.save(str(directory / "tokenizer.json"))
    if engine == "turbo":
        config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "eos_token": _GPT2_EOS,
            "unk_token": _GPT2_EOS,
        }
        (directory / "tokenizer_config.json").write_text(json.dumps(config))


def _tokenizer(directory: Path, engine: str) -> Any:
    if engine == "turbo":
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(directory)
        tokenizer.pad_token = tokenizer.eos_token  # as ChatterboxTurboTTS.from_local does
        return tokenizer
    from chatterbox.models.tokenizers import EnTokenizer

    return EnTokenizer(str(directory / "tokenizer.json"))


def _model_class(engine: str) -> Any:
    if engine == "turbo":
        from chatterbox.tts_turbo import ChatterboxTurboTTS

        return ChatterboxTurboTTS
    from chatterbox.tts import ChatterboxTTS

    return ChatterboxTTS


def make_tiny_model(directory: Path, *, engine: str = "tts", seed: int = 0) -> Path:
    """Write a tiny model directory (about 1 GB, mostly S3Gen's speech tokenizer).

    Args:
        directory: Created if missing; the files land directly in it.
        engine: "tts" (for chatterbox-en-v1) or "turbo" (for chatterbox-turbo-v1).
        seed: Torch seed for the random weights.

    Returns:
        `directory`.
    """
    import numpy as np
    import soundfile
    import torch
    from safetensors.torch import save_file

    config = TINY_CONFIGS[engine]
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    t3, s3gen, ve = _build(config)
    save_file(t3.state_dict(), directory / _FILES[engine]["t3"])
    save_file({k: v.contiguous() for k, v in s3gen.state_dict().items()}, directory / _FILES[engine]["s3gen"])
    save_file(ve.state_dict(), directory / "ve.safetensors")
    _write_tokenizer(directory, engine)
    (directory / TINY_MARKER).write_text(json.dumps(config, indent=2))

    # The default voice: conditionals from a synthetic 6-second clip, through the real path.
    model = _model_class(engine)(t3.eval(), s3gen.eval(), ve.eval(), _tokenizer(directory, engine), "cpu")
    sr = 24_000
    t = np.arange(6 * sr) / sr
    clip = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2).astype(np.float32)
    wav_path = directory / "default-voice.wav"
    soundfile.write(wav_path, clip, sr)
    model.prepare_conditionals(str(wav_path))
    model.conds.save(directory / "conds.pt")
    wav_path.unlink()
    return directory


def is_tiny(directory: Path) -> bool:
    """Whether `directory` was made by `make_tiny_model`."""
    return (directory / TINY_MARKER).exists()


def load_tiny_model(directory: Path, device: str) -> Any:
    """Load a directory made by `make_tiny_model` as its chatterbox class."""
    from chatterbox.tts import Conditionals
    from safetensors.torch import load_file

    config = json.loads((directory / TINY_MARKER).read_text())
    engine = config["engine"]
    t3, s3gen, ve = _build(config)
    t3.load_state_dict(load_file(directory / _FILES[engine]["t3"]))
    s3gen.load_state_dict(load_file(directory / _FILES[engine]["s3gen"]))
    ve.load_state_dict(load_file(directory / "ve.safetensors"))
    conds = Conditionals.load(directory / "conds.pt", map_location="cpu").to(device)
    return _model_class(engine)(
        t3.to(device).eval(),
        s3gen.to(device).eval(),
        ve.to(device).eval(),
        _tokenizer(directory, engine),
        device,
        conds=conds,
    )
