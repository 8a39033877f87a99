"""`python -m voice_service serve | download | make-tiny-model`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from contract.voice_models import VOICE_MODELS

from .protocol import READY_PREFIX


async def _serve(host: str, port: int) -> None:
    from aiohttp import web

    from .service import create_app
    from .settings import ServiceSettings

    settings = ServiceSettings()
    runner = web.AppRunner(create_app(settings), handle_signals=False)
    await runner.setup()  # loads the models: the port opens only once they are ready
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_host, bound_port = runner.addresses[0][:2]
    url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    # One line on stdout tells a parent process (the worker's embedded launcher) where we listen.
    print(f"{READY_PREFIX}http://{url_host}:{bound_port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m voice_service`."""
    parser = argparse.ArgumentParser(
        prog="python -m voice_service", description="The Chatterbox voice service."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the voice service (settings from CHATTERBOX_* variables)")
    serve.add_argument("--host", default=None, help="default: CHATTERBOX_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default: CHATTERBOX_PORT or 8091; 0 picks one")
    download = commands.add_parser("download", help="fetch weights from the Hugging Face hub into the cache")
    download.add_argument(
        "models",
        nargs="*",
        metavar="MODEL",
        help=f"default: CHATTERBOX_MODELS; any of {', '.join(sorted(VOICE_MODELS))}",
    )
    tiny = commands.add_parser(
        "make-tiny-model", help="write a tiny random model directory (tests, benchmark)"
    )
    tiny.add_argument("directory", type=Path, help="e.g. ./tiny-models/chatterbox-en-v1")
    tiny.add_argument(
        "--engine",
        choices=["tts", "turbo"],
        default="tts",
        help="tts: chatterbox-en-v1; turbo: chatterbox-turbo-v1",
    )
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from .settings import ServiceSettings

    if args.command == "serve":
        from .log import logger
        from .weights import ModelNotFoundError

        settings = ServiceSettings()
        try:
            asyncio.run(_serve(args.host or settings.host, settings.port if args.port is None else args.port))
        except ModelNotFoundError as exc:
            logger.error("voice model missing", extra={"detail": str(exc)})
            print(f"error: {exc}", file=sys.stderr)
            return 2
    elif args.command == "download":
        from .weights import download as fetch

        unknown = sorted(set(args.models) - set(VOICE_MODELS))
        if unknown:
            parser.error(f"unknown voice models: {', '.join(unknown)}")
        settings = ServiceSettings()
        for name, path in fetch(args.models or settings.models, settings.cache_dir).items():
            print(f"{name}: {path}")
    elif args.command == "make-tiny-model":
        from .tiny_model import make_tiny_model

        print(make_tiny_model(args.directory, engine=args.engine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
