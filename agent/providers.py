"""Every provider a session uses, built here: VAD, turn detector, STT, LLM and TTS.

Every model is constructed explicitly from a plugin with a base URL, never from
a model string such as "deepgram/nova-3", which would route to LiveKit Cloud's
hosted inference. Turn detection is the local `v1-mini` end-of-turn model that
ships in livekit-local-inference, with VAD-based interruptions.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from typing import Any

from livekit.agents import inference, llm, stt, tts, vad
from livekit.plugins import deepgram, silero

from contract.model import TurnConfig
from contract.session_config import SessionConfig

from .openai_client import LLM as OpenAILLM
from .settings import Settings

# Imported here, not lazily: agent.tts registers a livekit Plugin on import, which
# livekit only allows on the main thread (console jobs run in a worker thread).
from .tts import TTS as ChatterboxTTS

logger = logging.getLogger("oshara.agent.providers")


EMBEDDED_VOICE_ERROR_ENV = "OSHARA_EMBEDDED_VOICE_ERROR"
"""Set by `python -m agent` when CHATTERBOX_URL is unset and its embedded voice service
did not start: why, naming the command that fixes it, for every session to report."""


class ProviderUnavailable(RuntimeError):
    """Models cannot be built: a key, URL or voice service is missing.

    `missing` holds one sentence per model, each naming the setting or the command.
    """

    def __init__(self, *missing: str) -> None:
        super().__init__("; ".join(missing))
        self.missing = list(missing)


@dataclass
class LocalModels:
    """The models loaded once per worker process (in prewarm) and shared by its jobs."""

    vad: vad.VAD
    turn_detector: Any


def load_local_models() -> LocalModels:
    """Silero VAD and the local end-of-turn model; their weights ship in the wheels."""
    import livekit.local_inference as local_inference

    local_inference.init_eot()
    return LocalModels(
        vad=silero.VAD.load(),
        turn_detector=inference.TurnDetector(version="v1-mini"),
    )


def session_vad(loaded: vad.VAD, turn: TurnConfig) -> vad.VAD:
    """A Silero VAD with the session's own silence setting, sharing the loaded weights.

    The VAD loaded in prewarm is shared by every job of the process, and its streams
    share its options object, so `update_options` on it would change every session.
    This builds a VAD of its own around the same ONNX inference session (each stream
    keeps its own model state). Any other VAD is returned as it is.
    """
    if not isinstance(loaded, silero.VAD):
        return loaded
    if loaded.min_silence_duration == turn.min_silence_seconds:
        return loaded
    opts = dataclasses.replace(loaded._opts, min_silence_duration=turn.min_silence_seconds)
    return silero.VAD(session=loaded._onnx_session, opts=opts)


def stt_language(config: SessionConfig) -> str:
    """Deepgram's language: the session's BCP-47 tag, or `multi` when unset."""
    return config.language or "multi"


def missing_providers(settings: Settings) -> list[str]:
    """What keeps the STT, LLM and TTS from being built, one sentence each; empty when nothing.

    The LLM is judged on the settings alone: a character's own `llm.base_url` may still
    provide one.
    """
    found = (_stt_missing(settings), _llm_missing(settings, None), _tts_missing(settings))
    return [m for m in found if m]


def _stt_missing(settings: Settings) -> str | None:
    if settings.deepgram_api_key is None:
        return "DEEPGRAM_API_KEY is not set: no speech recognition"
    return None


def _llm_missing(settings: Settings, character_base_url: str | None) -> str | None:
    if settings.openai_api_key is None and not (character_base_url or settings.openai_base_url):
        return "OPENAI_API_KEY is not set (nor OPENAI_BASE_URL for an OpenAI-compatible server): no LLM"
    return None


def _tts_missing(settings: Settings) -> str | None:
    if settings.chatterbox_url:
        return None
    why = os.environ.get(EMBEDDED_VOICE_ERROR_ENV) or "no embedded voice service is running"
    return f"CHATTERBOX_URL is not set and {why}: no voice"


def build_stt(config: SessionConfig, settings: Settings) -> stt.STT:
    """Deepgram streaming STT for the session's language."""
    if missing := _stt_missing(settings):
        raise ProviderUnavailable(missing)
    assert settings.deepgram_api_key is not None
    return deepgram.STT(
        model=config.stt.model,
        language=stt_language(config),
        api_key=settings.deepgram_api_key.get_secret_value(),
        base_url=settings.deepgram_base_url,
    )


def build_llm(config: SessionConfig, settings: Settings) -> llm.LLM:
    """An OpenAI-compatible chat-completions LLM; the character's base URL wins.

    livekit's OpenAI plugin, on a client that sends each request without the SDK's
    conversion pass (`agent.openai_client`).
    """
    character_base_url = str(config.llm.base_url) if config.llm.base_url else None
    if missing := _llm_missing(settings, character_base_url):
        raise ProviderUnavailable(missing)
    base_url = character_base_url or settings.openai_base_url
    # a local OpenAI-compatible server may not check keys
    api_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "not-needed"
    kwargs: dict[str, Any] = {
        "model": config.llm.model,
        "api_key": api_key,
        "temperature": config.llm.temperature,
    }
    if base_url:
        kwargs["base_url"] = base_url.rstrip("/")
    return OpenAILLM(**kwargs)


def build_tts(config: SessionConfig, settings: Settings) -> tts.TTS:
    """The Chatterbox TTS for the session's voice model, language and reference clip.

    Raises:
        ProviderUnavailable: no voice service URL (CHATTERBOX_URL, or the embedded
            service that `python -m agent` starts when it is unset); the message says
            why the embedded one did not start.
    """
    if missing := _tts_missing(settings):
        raise ProviderUnavailable(missing)
    assert settings.chatterbox_url is not None
    return ChatterboxTTS(
        base_url=settings.chatterbox_url,
        voice_model=config.voice_model,
        language=config.language,
        reference_audio_url=config.reference_audio_url,
        voice=config.voice,
    )
