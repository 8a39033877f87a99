"""The tiny chatterbox engine, built and loaded once per test process."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

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


@functools.cache
def tiny_model_root() -> Path:
    """A CHATTERBOX_MODEL_DIR holding a tiny `chatterbox-en-v1`, removed at exit."""
    from voice_service.tiny_model import make_tiny_model

    root = Path(tempfile.mkdtemp(prefix="oshara-tiny-chatterbox-"))
    atexit.register(shutil.rmtree, root, True)
    make_tiny_model(root / "chatterbox-en-v1")
    return root


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
    """The tiny `chatterbox-turbo-v1` VoiceEngine (its directory is added to tiny_model_root())."""
    from voice_service.engine import VoiceEngine
    from voice_service.settings import ServiceSettings
    from voice_service.tiny_model import make_tiny_model

    root = tiny_model_root()
    make_tiny_model(root / "chatterbox-turbo-v1", engine="turbo")
    settings = ServiceSettings(_env_file=None, model_dir=root, max_new_tokens=TINY_MAX_NEW_TOKENS)
    engine = VoiceEngine.load("chatterbox-turbo-v1", settings)
    atexit.register(engine.close)
    return engine
