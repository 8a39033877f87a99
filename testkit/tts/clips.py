"""Reference clips made with numpy + soundfile, and an aiohttp app that serves them."""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from collections.abc import Awaitable, Callable

import numpy as np
import soundfile
from aiohttp import web

# How many times each path was requested.
HITS = web.AppKey("hits", Counter)

FORMATS = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}


def clip_bytes(seconds: float, *, fmt: str = "wav", sample_rate: int = 16_000, pitch: float = 160.0) -> bytes:
    """A voiced-sounding tone (a pitch with harmonics and a syllable rhythm) in `fmt`."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in range(1, 6))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4 * t))
    samples = (0.2 * tone * envelope).astype(np.float32)
    major, subtype = FORMATS[fmt]
    out = io.BytesIO()
    soundfile.write(out, samples, sample_rate, format=major, subtype=subtype)
    return out.getvalue()


def clip_app() -> web.Application:
    """Routes: /clip.<fmt>, /pitch/<hz>.wav, /short.wav (1 s), /long.wav (2 min), /big
    (11 MB, with Content-Length), /seconds/<s>.wav, /big-chunked (11 MB, no Content-Length), /stall,
    /page.html, /html-as-audio, /redirect?to=URL, /hops/<n> (a chain of n redirects).
    """
    hits: Counter[str] = Counter()

    @web.middleware
    async def count(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        hits[request.path] += 1
        return await handler(request)

    app = web.Application(middlewares=[count])
    app[HITS] = hits
    cache: dict[str, bytes] = {}

    def cached(key: str, make: object) -> bytes:
        if key not in cache:
            cache[key] = make()  # type: ignore[operator]
        return cache[key]

    async def clip(request: web.Request) -> web.Response:
        fmt = request.match_info["fmt"]
        content_type = {"mp3": "audio/mpeg"}.get(fmt, f"audio/{fmt}")
        return web.Response(body=cached(fmt, lambda: clip_bytes(4.0, fmt=fmt)), content_type=content_type)

    async def pitch(request: web.Request) -> web.Response:
        hz = float(request.match_info["hz"])
        return web.Response(body=clip_bytes(4.0, pitch=hz), content_type="audio/wav")

    async def seconds(request: web.Request) -> web.Response:
        length = float(request.match_info["s"])
        return web.Response(body=cached(f"s{length}", lambda: clip_bytes(length)), content_type="audio/wav")

    async def short(_: web.Request) -> web.Response:
        return web.Response(body=cached("short", lambda: clip_bytes(1.0)), content_type="audio/wav")

    async def long(_: web.Request) -> web.Response:
        body = cached("long", lambda: clip_bytes(120.0, fmt="flac", sample_rate=8000))
        return web.Response(body=body, content_type="audio/flac")

    async def big(_: web.Request) -> web.Response:
        return web.Response(body=b"\0" * (11 * 1024 * 1024), content_type="audio/wav")

    async def big_chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "audio/wav"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(11 * 16):
            await response.write(b"\0" * 65536)
        await response.write_eof()
        return response

    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "audio/wav", "Content-Length": "100000"})
        await response.prepare(request)
        await response.write(b"RIFF")
        await asyncio.sleep(3600)
        return response

    async def page(_: web.Request) -> web.Response:
        return web.Response(text="<html><body>not audio</body></html>", content_type="text/html")

    async def html_as_audio(_: web.Request) -> web.Response:
        return web.Response(body=b"<html><body>not audio</body></html>" * 100, content_type="audio/wav")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def hops(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        raise web.HTTPFound("/clip.wav" if n <= 1 else f"/hops/{n - 1}")

    app.router.add_get("/clip.{fmt}", clip)
    app.router.add_get("/pitch/{hz}.wav", pitch)
    app.router.add_get("/seconds/{s}.wav", seconds)
    app.router.add_get("/short.wav", short)
    app.router.add_get("/long.wav", long)
    app.router.add_get("/big", big)
    app.router.add_get("/big-chunked", big_chunked)
    app.router.add_get("/stall", stall)
    app.router.add_get("/page.html", page)
    app.router.add_get("/html-as-audio", html_as_audio)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/hops/{n}", hops)
    return app
