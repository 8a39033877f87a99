"""Building the session's models: VAD, turn detector, STT, LLM and TTS.

Every model is constructed explicitly from a plugin with a base URL, never from
a model string such as "deepgram/nova-3", which would route to LiveKit Cloud's
hosted inference. Turn detection is the local `v1-mini` end-of-turn model that
ships in livekit-local-inference, with VAD-based interruptions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from livekit.agents import inference, llm, stt, tts, vad
from livekit.plugins import deepgram, openai, silero

from characters.session_config import SessionConfig

from .settings import Settings

# Imported here, not lazily: agent.tts registers a livekit Plugin on import, which
# livekit only allows on the main thread (console jobs run in a worker thread).
from .tts import TTS as ChatterboxTTS

logger = logging.getLogger("oshara.agent.voice")


class ProviderUnavailable(RuntimeError):
    """A model cannot be built: missing key or plugin. The message names the setting."""


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


def stt_language(config: SessionConfig) -> str:
    """Deepgram's language: the session's BCP-47 tag, or `multi` when unset."""
    return config.language or "multi"


def build_stt(config: SessionConfig, settings: Settings) -> stt.STT:
    """Deepgram streaming STT for the session's language."""
    if settings.deepgram_api_key is None:
        raise ProviderUnavailable("DEEPGRAM_API_KEY is not set")
    return deepgram.STT(
        model=config.stt.model,
        language=stt_language(config),
        api_key=settings.deepgram_api_key.get_secret_value(),
        base_url=settings.deepgram_base_url,
    )


def build_llm(config: SessionConfig, settings: Settings) -> llm.LLM:
    """An OpenAI-compatible chat-completions LLM; the character's base URL wins."""
    base_url = str(config.llm.base_url) if config.llm.base_url else settings.openai_base_url
    api_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    if api_key is None:
        if base_url is None:
            raise ProviderUnavailable("OPENAI_API_KEY is not set")
        api_key = "not-needed"  # a local OpenAI-compatible server may not check keys
    kwargs: dict[str, Any] = {
        "model": config.llm.model,
        "api_key": api_key,
        "temperature": config.llm.temperature,
    }
    if base_url:
        kwargs["base_url"] = base_url.rstrip("/")
    return openai.LLM(**kwargs)


def build_tts(config: SessionConfig, settings: Settings) -> tts.TTS:
    """The Chatterbox TTS for the session's voice model, language and reference clip.

    Raises:
        ProviderUnavailable: no voice service URL (CHATTERBOX_URL, or the embedded
            service that `python -m agent` starts when it is unset).
    """
    if not settings.chatterbox_url:
        raise ProviderUnavailable("CHATTERBOX_URL is not set and no embedded voice service is running")
    return ChatterboxTTS(
        base_url=settings.chatterbox_url,
        voice_model=config.voice_model,
        language=config.language,
        reference_audio_url=config.reference_audio_url,
        voice=config.voice,
    )
