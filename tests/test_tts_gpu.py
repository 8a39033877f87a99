"""Real Chatterbox weights on a GPU: skipped unless CHATTERBOX_MODEL_DIR is set and CUDA is present.

Run on a GPU box after `python -m voice_service download` and pointing CHATTERBOX_MODEL_DIR
at a directory with one sub-directory per voice model (see docs/voice.md).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from testkit.tts.clips import clip_bytes
from testkit.tts.engine import CHATTERBOX_WARNINGS

pytestmark = [pytest.mark.gpu, *CHATTERBOX_WARNINGS]

MODEL_DIR = os.environ.get("CHATTERBOX_MODEL_DIR")


def _cuda() -> bool:
    if not MODEL_DIR:
        return False
    import torch

    return torch.cuda.is_available()


requires_gpu = pytest.mark.skipif(
    not _cuda(), reason="needs real weights in CHATTERBOX_MODEL_DIR and a CUDA device"
)


@requires_gpu
@pytest.mark.parametrize("name", ["chatterbox-en-v1", "chatterbox-multilingual-v1", "chatterbox-turbo-v1"])
async def test_real_model_speaks_with_default_and_cloned_voice(name: str) -> None:
    from contract.model import VoiceSettings
    from voice_service.engine import VoiceEngine
    from voice_service.settings import ServiceSettings

    assert MODEL_DIR is not None
    if not (Path(MODEL_DIR) / name).is_dir():
        pytest.skip(f"{name} is not in CHATTERBOX_MODEL_DIR")
    engine = VoiceEngine.load(name, ServiceSettings(_env_file=None, model_dir=Path(MODEL_DIR), device="cuda"))
    try:
        voice = VoiceSettings()
        await engine.synthesize("Warming up.", conditionals=None, voice=voice, language="en")
        started = time.perf_counter()
        pcm = await engine.synthesize("Hello, how can I help?", conditionals=None, voice=voice, language="en")
        elapsed = time.perf_counter() - started
        assert len(pcm) > 24_000  # more than half a second of speech
        assert elapsed < 2.0
        conditionals = await engine.compute_conditionals(clip_bytes(8.0))
        cloned = await engine.synthesize(
            "Hello again.", conditionals=conditionals, voice=voice, language="en"
        )
        assert len(cloned) > 24_000
    finally:
        engine.close()
