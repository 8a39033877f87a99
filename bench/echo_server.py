"""The baselines: a bare aiohttp app that echoes a JSON body (201) or serves a JSON blob."""

from __future__ import annotations

import argparse
import json

from aiohttp import web


async def echo(request: web.Request) -> web.Response:
    body = await request.json()
    return web.json_response(body, status=201)


async def blob(request: web.Request) -> web.Response:
    """A JSON body of `?bytes=N`, built once per size: the floor for serving a page."""
    size = int(request.query.get("bytes", "1000"))
    cache = request.app[BLOBS]
    if size not in cache:
        cache[size] = json.dumps({"events": [], "pad": "x" * max(0, size - 30)}).encode()
    return web.Response(body=cache[size], content_type="application/json")


BLOBS = web.AppKey("blobs", dict)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app[BLOBS] = {}
    app.router.add_post("/v1/sessions", echo)
    app.router.add_get("/v1/blob", blob)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
