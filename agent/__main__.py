"""`python -m agent dev|start|console|download-files`: the worker through livekit's CLI.

`console --character SLUG [--text]` talks to a character from `CHARACTERS_DIR`
locally: no LiveKit server and no token server (reports go to the log).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import sys
import threading
import warnings

from livekit.agents import cli

from .settings import Settings
from .worker import CONSOLE_CHARACTER_ENV, build_server

logger = logging.getLogger("oshara.agent")


def _take_option(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            value = argv[i + 1]
            del argv[i : i + 2]
            return value
        if arg.startswith(name + "="):
            del argv[i]
            return arg.split("=", 1)[1]
    return None


def _start_embedded_voice_service() -> str | None:
    """Start the voice service as a child process (CHATTERBOX_URL unset); its URL, or None.

    It runs on an event loop in a background thread for the life of this process, so
    every job process of the worker (which inherits CHATTERBOX_URL) shares one model.
    """
    from .tts import EmbeddedVoiceService

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="oshara-voice-service", daemon=True).start()
    service = EmbeddedVoiceService()
    try:
        url = asyncio.run_coroutine_threadsafe(service.start(), loop).result()
    except Exception as exc:
        # the service has already said why (e.g. weights not downloaded); sessions will
        # report "CHATTERBOX_URL is not set" until a voice service is configured
        logger.error(
            "could not start the embedded voice service; set CHATTERBOX_URL",
            extra={"error": type(exc).__name__},
        )
        loop.call_soon_threadsafe(loop.stop)
        return None

    def stop() -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(service.aclose(), loop).result(timeout=15)
        loop.call_soon_threadsafe(loop.stop)

    atexit.register(stop)
    logger.info("embedded voice service started", extra={"url": url})
    return url


def main() -> None:
    """Run the livekit-agents CLI with the Oshara worker."""
    argv = sys.argv[1:]
    character = _take_option(argv, "--character")
    if argv[:1] == ["console"]:
        if not character:
            sys.exit("console needs a character: python -m agent console --character SLUG [--text]")
        os.environ[CONSOLE_CHARACTER_ENV] = character
    elif character:
        sys.exit("--character only applies to the console command")
    settings = Settings()
    if argv[:1] in (["dev"], ["start"], ["console"]) and not settings.chatterbox_url:
        url = _start_embedded_voice_service()
        if url:
            os.environ["CHATTERBOX_URL"] = url
            settings = Settings()
    sys.argv = [sys.argv[0], *argv]
    # livekit-agents 1.8 marks its Python CLI deprecated in favour of the `lk` binary,
    # which this project does not require; the CLI still works as documented.
    warnings.filterwarnings(
        "ignore", message="the built-in Python CLI is deprecated", category=DeprecationWarning
    )
    cli.run_app(build_server(settings))


if __name__ == "__main__":
    main()
