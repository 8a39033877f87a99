import logging

logger = logging.getLogger("oshara.tts")
