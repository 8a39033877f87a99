"""A voice service stand-in that prints to stdout the way chatterbox does, on cue.

`python -m testkit.standins.chatty_service serve --host 127.0.0.1 --port 0` prints
the ready line `voice_service serve` prints, then answers:

- `GET /healthz`: 200;
- `POST /print?lines=N`: prints N lines to stdout from a worker thread, as chatterbox
  prints from the model's thread during a synthesis, and answers once they are written.

The embedded-service tests run it in place of the real service: it starts in a second
and can write megabytes without a model.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from aiohttp import web

from voice_service.protocol import READY_PREFIX


def _print_lines(count: int) -> None:
    for n in range(count):
        print(f"Warning: stand-in synthesis output line {n:05d}, as chatterbox prints", flush=True)


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _print(request: web.Request) -> web.Response:
    count = int(request.query["lines"])
    await asyncio.to_thread(_print_lines, count)
    return web.json_response({"printed": count})


async def _serve(host: str, port: int) -> None:
    app = web.Application()
    app.router.add_get("/healthz", _healthz)
    app.router.add_post("/print", _print)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    bound_host, bound_port = runner.addresses[0][:2]
    print(f"{READY_PREFIX}http://{bound_host}:{bound_port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Entry point: `serve --host H --port P`, as `python -m voice_service` takes them."""
    parser = argparse.ArgumentParser(prog="python -m testkit.standins.chatty_service")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
