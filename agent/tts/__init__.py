"""The worker's side of the Chatterbox voice: the TTS plugin and the embedded launcher.

The voice service itself is the top-level package `voice_service` (`python -m
voice_service serve`), deployed apart; this package speaks to it over HTTP
(`voice_service.protocol`) and imports nothing heavier. It registers the livekit
`Plugin` whose `download_files()` fetches the weights, so `python -m agent
download-files` fills the cache the embedded service reads. A worker installed without
the voice service (`.[worker]` alone, CHATTERBOX_URL naming a remote one) has no
weights to fetch: they are the voice service's, fetched on its machine.
"""

from __future__ import annotations

import importlib.util

from livekit.agents import Plugin

from .embedded import EmbeddedServiceError, EmbeddedVoiceService, voice_service_url
from .log import logger
from .plugin import TTS, ChunkedStream

__version__ = "0.1.0"

__all__ = [
    "TTS",
    "ChunkedStream",
    "EmbeddedServiceError",
    "EmbeddedVoiceService",
    "voice_service_url",
]


class ChatterboxPlugin(Plugin):
    """Registers `download_files`, called by `python -m agent download-files`."""

    def __init__(self) -> None:
        super().__init__(__name__, __version__, __package__ or "agent.tts", logger)

    def download_files(self) -> None:
        """Fetch the weights of the CHATTERBOX_MODELS voice models into CHATTERBOX_CACHE_DIR."""
        if importlib.util.find_spec("chatterbox") is None:
            logger.info(
                "no embedded voice service here ('.[voice]' is not installed), so no voice weights"
                " to download; run `python -m voice_service download` where the voice service runs"
            )
            return
        from voice_service.settings import ServiceSettings
        from voice_service.weights import download

        settings = ServiceSettings()
        if settings.model_dir is not None:
            logger.info(
                "CHATTERBOX_MODEL_DIR is set, nothing to download", extra={"dir": str(settings.model_dir)}
            )
            return
        for name, path in download(settings.models, settings.cache_dir).items():
            logger.info("voice model downloaded", extra={"voice_model": name, "path": str(path)})


Plugin.register_plugin(ChatterboxPlugin())
