"""`python -m agent dev|start|console|download-files`: the worker through livekit's CLI.

`test [SLUG...]` runs the characters' conversation tests (agent/conversation_tests.py).

`console --character SLUG [--text]` talks to a character from `CHARACTERS_DIR`
locally: no LiveKit server and no token server (reports go to the log).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.util
import logging
import os
import sys
import threading
import warnings

from livekit.agents import cli
from pydantic import ValidationError

from contract.ingest_token import SHORT_KEY_WARNING, quiet_short_secret
from contract.voice_models import VOICE_MODELS

from . import conversation_tests
from .providers import EMBEDDED_VOICE_ERROR_ENV, missing_providers
from .settings import Settings
from .worker import CONSOLE_CHARACTER_ENV, build_server


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


def _voice_weights_missing() -> str | None:
    """Why the embedded voice service could not load its models, found without starting it.

    The same check the service makes (`weights.locate`), so a machine without the weights
    neither waits for torch to load nor reads three lines about it.
    """
    from voice_service.settings import ServiceSettings
    from voice_service.weights import ModelNotFoundError, locate

    if importlib.util.find_spec("chatterbox") is None:  # a worker installed without '.[voice]'
        return "the voice service is not installed here: `pip install '.[voice]'`, or set CHATTERBOX_URL"
    try:
        settings = ServiceSettings()
        for name in settings.models:
            locate(VOICE_MODELS[name], model_dir=settings.model_dir, cache_dir=settings.cache_dir)
    except ModelNotFoundError as exc:
        return str(exc)
    except ValidationError as exc:
        return f"a CHATTERBOX_* setting is invalid: {exc.errors()[0]['msg']}"
    return None


def _start_embedded_voice_service() -> str | None:
    """Start the voice service as a child process (CHATTERBOX_URL unset); its URL, or None.

    It runs on an event loop in a background thread for the life of this process, so
    every job process of the worker (which inherits CHATTERBOX_URL) shares one model.
    When it cannot start, EMBEDDED_VOICE_ERROR_ENV (inherited likewise) says why, and
    every session reports that.
    """
    from .tts import EmbeddedVoiceService

    why = _voice_weights_missing()
    if why is not None:
        os.environ[EMBEDDED_VOICE_ERROR_ENV] = f"the embedded voice service cannot start: {why}"
        return None
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="oshara-voice-service", daemon=True).start()
    service = EmbeddedVoiceService()
    try:
        url = asyncio.run_coroutine_threadsafe(service.start(), loop).result()
    except Exception as exc:
        # the service has said why on its stderr, above
        os.environ[EMBEDDED_VOICE_ERROR_ENV] = (
            f"the embedded voice service did not start ({str(exc) or type(exc).__name__}; "
            "its output in the worker's log says why)"
        )
        loop.call_soon_threadsafe(loop.stop)
        return None

    def stop() -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(service.aclose(), loop).result(timeout=15)
        loop.call_soon_threadsafe(loop.stop)

    atexit.register(stop)
    print(f"voice service on {url} (embedded; CHATTERBOX_URL names another)", flush=True)
    return url


class _QuietStart(logging.Filter):
    """Drops livekit-agents' start-up lines that ask nothing of whoever reads them.

    Which plugins registered and were preloaded, and that the Python CLI's `dev` is
    deprecated (this project uses it knowingly, see the DeprecationWarning below).
    """

    LINES = (
        "plugin registered",
        "preloading plugins",
        "dev mode is deprecated",
        "in-process auto-reload has been removed",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        """False for one of `LINES`."""
        return not (isinstance(record.msg, str) and record.msg.startswith(self.LINES))


def main() -> None:
    """Run the livekit-agents CLI with the Oshara worker."""
    argv = sys.argv[1:]
    if argv[:1] == ["test"]:
        if "--audio" in argv and not Settings().chatterbox_url and (url := _start_embedded_voice_service()):
            os.environ["CHATTERBOX_URL"] = url
        sys.exit(conversation_tests.main(argv[1:]))
    character = _take_option(argv, "--character")
    if argv[:1] == ["console"]:
        if not character:
            sys.exit("console needs a character: python -m agent console --character SLUG [--text]")
        os.environ[CONSOLE_CHARACTER_ENV] = character
    elif character:
        sys.exit("--character only applies to the console command")
    settings = Settings()
    worker = argv[:1] in (["dev"], ["start"])
    # PyJWT would warn on the tokens this process signs; say it once instead
    if quiet_short_secret(settings.livekit_api_secret.get_secret_value()) and worker:
        print(f"warning: {SHORT_KEY_WARNING}", file=sys.stderr, flush=True)
    if (worker or argv[:1] == ["console"]) and not settings.chatterbox_url:
        url = _start_embedded_voice_service()
        if url:
            os.environ["CHATTERBOX_URL"] = url
            settings = Settings()
    if worker:
        # sessions still join, report each of these and leave: never in silence
        for missing in missing_providers(settings):
            print(f"warning: sessions cannot talk: {missing}", file=sys.stderr, flush=True)
    logging.getLogger("livekit.agents").addFilter(_QuietStart())
    sys.argv = [sys.argv[0], *argv]
    # livekit-agents 1.8 marks its Python CLI deprecated in favour of the `lk` binary,
    # which this project does not require; the CLI still works as documented.
    warnings.filterwarnings(
        "ignore", message="the built-in Python CLI is deprecated", category=DeprecationWarning
    )
    cli.run_app(build_server(settings))


if __name__ == "__main__":
    main()
