"""The voice service's one named logger."""

import logging

logger = logging.getLogger("oshara.voice_service")
