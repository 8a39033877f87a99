"""The voice engine: one loaded chatterbox model, driven from one worker thread.

A chatterbox model object is not thread-safe: its voice lives in `model.conds`, which
`generate()` reads (and, when the exaggeration changes, replaces). Every call into a
model therefore runs on that model's single-thread executor, and the conditionals are
set and used inside the same call. Work is off the event loop, one request at a time
per model, in arrival order, sentence by sentence, so concurrent streams interleave.

torch and chatterbox are imported only here (and lazily), so importing the service (or
its protocol, as the agent's plugin does) never pays for them.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from contract.model import VoiceSettings
from contract.voice_models import VOICE_MODELS, VoiceModel

from .log import logger
from .settings import ServiceSettings
from .weights import locate

R = TypeVar("R")


def _chatterbox_class(engine: str) -> Any:
    if engine == "tts":
        from chatterbox.tts import ChatterboxTTS

        return ChatterboxTTS
    if engine == "multilingual":
        from chatterbox.mtl_tts import ChatterboxMultilingualTTS

        return ChatterboxMultilingualTTS
    if engine == "turbo":
        from chatterbox.tts_turbo import ChatterboxTurboTTS

        return ChatterboxTurboTTS
    raise ValueError(f"unknown chatterbox engine {engine!r}")


def pick_device(setting: str) -> str:
    """The torch device for `setting` ("auto" picks CUDA when present)."""
    if setting != "auto":
        return setting
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _cap_speech_tokens(t3: Any, limit: int) -> None:
    """Make T3 stop after `limit` speech tokens.

    `generate()` passes a fixed max_new_tokens=1000 (turbo: max_gen_len=1000); the only
    way to lower it without copying `generate` is to wrap the T3 instance's methods.
    """
    for method, argument in (("inference", "max_new_tokens"), ("inference_turbo", "max_gen_len")):
        original = getattr(t3, method)

        def capped(*args: Any, _original: Any = original, _argument: str = argument, **kwargs: Any) -> Any:
            kwargs[_argument] = min(kwargs.get(_argument) or limit, limit)
            return _original(*args, **kwargs)

        setattr(t3, method, capped)


@dataclass
class EngineStats:
    """Counters for /healthz, tests and the benchmark."""

    utterances: int = 0
    conditionals_computed: int = 0


class VoiceEngine:
    """One loaded voice model.

    Args:
        voice_model: The registry entry this engine serves.
        model: A chatterbox model object (ChatterboxTTS, ...Multilingual..., ...Turbo...).
        device: The torch device it lives on.
    """

    def __init__(self, voice_model: VoiceModel, model: Any, *, device: str) -> None:
        if model.conds is None:
            raise ValueError(f"voice model {voice_model.name!r} has no default voice (conds.pt)")
        self.voice_model = voice_model
        self.device = device
        self.sample_rate: int = model.sr
        self.stats = EngineStats()
        self._model = model
        self._default_conds = model.conds
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"tts-{voice_model.name}")
        self._queued = 0
        self._lock = threading.Lock()

    @classmethod
    def load(cls, name: str, settings: ServiceSettings) -> VoiceEngine:
        """Load voice model `name` from disk (blocking: call it in a thread).

        Raises:
            ModelNotFoundError: its weights are not on this machine.
        """
        from .tiny_model import is_tiny, load_tiny_model

        voice_model = VOICE_MODELS[name]
        path = locate(voice_model, model_dir=settings.model_dir, cache_dir=settings.cache_dir)
        device = pick_device(settings.device)
        logger.info("loading voice model", extra={"voice_model": name, "device": device})
        if is_tiny(path):
            model = load_tiny_model(path, device)
        else:
            model = _chatterbox_class(voice_model.engine).from_local(path, device)
        if settings.max_new_tokens is not None:
            _cap_speech_tokens(model.t3, settings.max_new_tokens)
        return cls(voice_model, model, device=device)

    @property
    def name(self) -> str:
        """The voice model's public name."""
        return self.voice_model.name

    @property
    def queue_depth(self) -> int:
        """Calls submitted to this model and not finished (the running one included)."""
        return self._queued

    async def compute_conditionals(self, audio: bytes) -> Any:
        """Voice conditionals for a checked reference clip (WAV/MP3/OGG/FLAC bytes)."""
        return await self._run(self._prepare, audio)

    async def synthesize(
        self, text: str, *, conditionals: Any | None, voice: VoiceSettings, language: str | None = None
    ) -> bytes:
        """Speak one chunk of text; returns 16-bit little-endian mono PCM at `sample_rate`.

        Args:
            text: One chunk from `split_text` (never empty).
            conditionals: From `compute_conditionals`, or None for the default voice.
            voice: Exaggeration, CFG weight and temperature.
            language: Primary language subtag, for the multilingual model.
        """
        return await self._run(self._generate, text, conditionals, voice, language)

    def close(self) -> None:
        """Stop the worker thread once queued calls are done."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    @staticmethod
    def save_conditionals(conditionals: Any, path: Path) -> None:
        """Write conditionals to a file (blocking)."""
        conditionals.save(path)

    def load_conditionals(self, path: Path) -> Any:
        """Read conditionals from a file (blocking)."""
        from chatterbox.tts import Conditionals

        return Conditionals.load(path, map_location="cpu").to(self.device)

    async def _run(self, fn: Callable[..., R], *args: Any) -> R:
        with self._lock:
            self._queued += 1
        future = self._executor.submit(fn, *args)
        future.add_done_callback(self._done)
        # Cancelling the awaiting task cancels a call that has not started yet.
        return await asyncio.wrap_future(future)

    def _done(self, _future: Any) -> None:
        with self._lock:
            self._queued -= 1

    # The methods below run on the model's worker thread only.

    def _prepare(self, audio: bytes) -> Any:
        model = self._model
        # prepare_conditionals stores its result in model.conds; keep the default intact.
        try:
            model.prepare_conditionals(io.BytesIO(audio))
            conditionals = model.conds
        finally:
            model.conds = self._default_conds
        self.stats.conditionals_computed += 1
        return conditionals

    def _generate(
        self, text: str, conditionals: Any | None, voice: VoiceSettings, language: str | None
    ) -> bytes:
        import numpy as np
        from chatterbox.tts import Conditionals

        source = conditionals if conditionals is not None else self._default_conds
        # A shallow copy: generate() replaces conds.t3 when the exaggeration differs,
        # which must not leak into the cached object.
        self._model.conds = Conditionals(source.t3, source.gen)
        kwargs: dict[str, Any] = {"temperature": voice.temperature}
        if self.voice_model.engine == "turbo":
            # Turbo has no CFG or exaggeration, and logs a warning on every call given them.
            kwargs.update(exaggeration=0.0, cfg_weight=0.0)
        else:
            kwargs.update(exaggeration=voice.exaggeration, cfg_weight=voice.cfg_weight)
        if self.voice_model.engine == "multilingual":
            kwargs["language_id"] = language or "en"
        wav = self._model.generate(text, **kwargs)
        self.stats.utterances += 1
        samples = wav.squeeze(0).detach().cpu().numpy()
        return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
