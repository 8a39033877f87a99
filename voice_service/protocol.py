"""The voice service's wire format: what the service and its clients must agree on.

Both sides import this module, so it imports neither: no torch, no aiohttp, no
livekit. The agent's TTS plugin and embedded launcher (`agent/tts/`) read it; so does
the service (`voice_service.service`, `voice_service.__main__`).

    POST /v1/speech   SpeechRequest as JSON
                      -> 200, body: 16-bit little-endian PCM, mono, at X-Sample-Rate
                         (SAMPLE_RATE for every Chatterbox model), streamed sentence by sentence
    GET  /healthz     -> 200 once the models are loaded

`python -m voice_service serve` prints one line, READY_PREFIX followed by its base URL,
on stdout once it listens; a parent process reads it to learn the port.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from contract.model import VoiceSettings
from contract.voice_models import DEFAULT_VOICE_MODEL

READY_PREFIX = "OSHARA_TTS_LISTENING "
SAMPLE_RATE = 24_000
NUM_CHANNELS = 1

SPEECH_PATH = "/v1/speech"
HEALTH_PATH = "/healthz"

# Response headers of POST /v1/speech the client reads.
SAMPLE_RATE_HEADER = "X-Sample-Rate"
VOICE_FALLBACK_HEADER = "X-Voice-Fallback"  # why a reference clip was refused, when it was


class SpeechRequest(BaseModel):
    """The body of POST /v1/speech."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=100_000)
    voice_model: str = DEFAULT_VOICE_MODEL
    language: str | None = Field(None, max_length=35)
    reference_audio_url: str | None = Field(None, max_length=4096)
    voice: VoiceSettings = Field(default_factory=VoiceSettings)
