"""The tiny chatterbox models, made once and shared across runs, and their engines, loaded once per process."""

from __future__ import annotations

import atexit
import fcntl
import functools
import hashlib
import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from voice_service.tiny_model import TINY_MARKER

if TYPE_CHECKING:
    from voice_service.engine import VoiceEngine

# Warnings the real chatterbox stack emits, silenced narrowly for the modules that load it:
# diffusers deprecates the LoRA layers S3Gen is built from; chatterbox's T3 inference
# uses torch's deprecated sdp_kernel context; librosa's audioread fallback imports
# stdlib modules deprecated in Python 3.13. None of them is ours to fix.
CHATTERBOX_WARNINGS = [
    pytest.mark.filterwarnings("ignore:`LoRACompatibleLinear` is deprecated:FutureWarning"),
    pytest.mark.filterwarnings(r"ignore:`torch.backends.cuda.sdp_kernel\(\)` is deprecated:FutureWarning"),
    pytest.mark.filterwarnings("ignore:'aifc' is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:'audioop' is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:'sunau' is deprecated:DeprecationWarning"),
]

# Speech tokens per sentence for the tiny model (25 per second): it never stops by itself.
TINY_MAX_NEW_TOKENS = 8


# Tiny models are made once and shared: by every test process of a run, the e2e
# voice service included, and by later runs until the code that makes them changes.
# `python -m voice_service make-tiny-model` takes about half a minute per model.
TINY_MODELS_CACHE = Path(__file__).resolve().parents[2] / ".tools" / "tiny-chatterbox"
_TINY_MODELS = {"chatterbox-en-v1": "tts", "chatterbox-turbo-v1": "turbo"}


def _tiny_models_version() -> str:
    """What the tiny weights depend on: the code that makes them and chatterbox's version."""
    from voice_service import tiny_model  # light: torch loads only when a model is made

    digest = hashlib.sha256(Path(tiny_model.__file__).read_bytes())
    digest.update(importlib.metadata.version("chatterbox-tts").encode())
    return digest.hexdigest()[:16]


def tiny_model_dir(name: str = "chatterbox-en-v1") -> Path:
    """The shared CHATTERBOX_MODEL_DIR holding a tiny `name`, made now if it is not there yet.

    Made by the service's own command in a child process, so torch stays out of a test
    process that only starts the service; under a file lock, so concurrent runs make it once.
    """
    root = TINY_MODELS_CACHE / _tiny_models_version()
    if (root / name / TINY_MARKER).exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    with open(TINY_MODELS_CACHE / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / name / TINY_MARKER).exists():
            for stale in TINY_MODELS_CACHE.iterdir():  # models of older code: about 0.9 GB each
                if stale.is_dir() and stale != root:
                    shutil.rmtree(stale, ignore_errors=True)
            partial = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
            try:
                subprocess.run(  # noqa: S603 - our own command
                    [sys.executable, "-m", "voice_service", "make-tiny-model", str(partial / name)]
                    + ["--engine", _TINY_MODELS[name]],
                    check=True,
                    capture_output=True,
                )
                (partial / name).rename(root / name)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
    return root


@functools.cache
def tiny_model_root() -> Path:
    """A CHATTERBOX_MODEL_DIR holding a tiny `chatterbox-en-v1` (see `tiny_model_dir`)."""
    return tiny_model_dir("chatterbox-en-v1")


@functools.cache
def tiny_engine() -> VoiceEngine:
    """The tiny `chatterbox-en-v1` VoiceEngine, loaded through the service's own loader."""
    from voice_service.engine import VoiceEngine
    from voice_service.settings import ServiceSettings

    settings = ServiceSettings(
        _env_file=None, model_dir=tiny_model_root(), max_new_tokens=TINY_MAX_NEW_TOKENS
    )
    engine = VoiceEngine.load("chatterbox-en-v1", settings)
    atexit.register(engine.close)
    return engine


@functools.cache
def tiny_turbo_engine() -> VoiceEngine:
    """The tiny `chatterbox-turbo-v1` VoiceEngine (its directory sits beside the English one)."""
    from voice_service.engine import VoiceEngine
    from voice_service.settings import ServiceSettings

    root = tiny_model_dir("chatterbox-turbo-v1")
    settings = ServiceSettings(_env_file=None, model_dir=root, max_new_tokens=TINY_MAX_NEW_TOKENS)
    engine = VoiceEngine.load("chatterbox-turbo-v1", settings)
    atexit.register(engine.close)
    return engine
