"""The widget's built files, served precompressed with validators.

`widget/build.mjs` writes every file with a `.br` and a `.gz` beside it. An answer
is the best of the three that the request's `Accept-Encoding` allows (brotli, then
gzip; the file itself when the header is absent or refuses both), with
`Content-Encoding`, `Vary: Accept-Encoding`, and a strong `ETag` taken from the bytes
sent, so each encoding has its own and every replica of the server agrees on it. A
matching `If-None-Match` is a 304.

`/widget.js` is the stable URL pages embed: browsers keep it for minutes, then
revalidate. The files under `/widget/` are named by their content hash, so they are
cached for a year, `immutable`. Every answer may be read from any origin: the loader
imports its chunk as a module, a CORS fetch, from the page's origin.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from aiohttp import web

from .errors import NotFound

# Content codings we have files for, in our order of preference, with their file suffix.
ENCODINGS = {"br": ".br", "gzip": ".gz"}
CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
ENTRY_CACHE = "public, max-age=300"
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"


def accepted_encodings(header: str | None) -> list[str]:
    """The codings of ENCODINGS that an `Accept-Encoding` value allows, best first.

    By q-value, then by our preference; `*` stands for every coding not named. Without
    the header we send the file itself: any client can read that.
    """
    if header is None:
        return []
    named: dict[str, float] = {}
    for item in header.split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        coding = coding.lower()
        if coding:
            named["gzip" if coding == "x-gzip" else coding] = q
    star = named.get("*", 0.0)
    quality = {coding: named.get(coding, star) for coding in ENCODINGS}
    order = list(ENCODINGS)
    return sorted((c for c, q in quality.items() if q > 0), key=lambda c: (-quality[c], order.index(c)))


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an `If-None-Match` value names `etag` (weak comparison, as RFC 9110 says)."""
    if if_none_match is None:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


@dataclass(frozen=True)
class _Variant:
    """One file's bytes as last read, with the stat they were read under."""

    stamp: tuple[int, int]  # (st_mtime_ns, st_size)
    body: bytes
    etag: str


@dataclass(frozen=True)
class _Selected:
    content_type: str
    encoding: str | None
    variant: _Variant


class StaticFiles:
    """The files under `root`, each served in the best encoding a request accepts.

    Bytes are kept once read and read again when a file's size or mtime changes, so a
    rebuild under a running server (`make widget` beside `make dev`) is served at once.
    """

    def __init__(self, root: Path) -> None:
        self._root = root.resolve()
        self._read: dict[Path, _Variant] = {}

    async def serve(self, request: web.Request, name: str, *, cache_control: str) -> web.Response:
        """Answer GET or HEAD for the file `name` (a path relative to the root)."""
        codings = accepted_encodings(request.headers.get("Accept-Encoding"))
        selected = await asyncio.to_thread(self._select, name, codings)
        if selected is None:
            raise NotFound("No such file.")
        headers = {
            "ETag": selected.variant.etag,
            "Cache-Control": cache_control,
            "Vary": "Accept-Encoding",
            "Access-Control-Allow-Origin": "*",
            "Cross-Origin-Resource-Policy": "cross-origin",
            "X-Content-Type-Options": "nosniff",
        }
        if etag_matches(request.headers.get("If-None-Match"), selected.variant.etag):
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = selected.content_type
        if selected.encoding is not None:
            headers["Content-Encoding"] = selected.encoding
        return web.Response(body=selected.variant.body, headers=headers)

    def _select(self, name: str, codings: list[str]) -> _Selected | None:
        """The variant to send (in a worker thread: it stats and may read files)."""
        parts = PurePosixPath(name).parts
        # Plain names only: nothing above the root, nothing hidden, no .br asked for by name.
        if not parts or any(p.startswith(".") or "\\" in p or "\0" in p for p in parts):
            return None
        path = self._root.joinpath(*parts)
        content_type = CONTENT_TYPES.get(path.suffix)
        if content_type is None:
            return None
        try:
            inside = path.resolve().is_relative_to(self._root)
        except (OSError, RuntimeError):  # a name too long, a symlink loop
            return None
        if not inside:
            return None
        for coding in codings:
            variant = self._variant(path.with_name(path.name + ENCODINGS[coding]))
            if variant is not None:
                return _Selected(content_type, coding, variant)
        variant = self._variant(path)
        return None if variant is None else _Selected(content_type, None, variant)

    def _variant(self, path: Path) -> _Variant | None:
        try:
            stat = path.stat()
        except OSError:
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        known = self._read.get(path)
        if known is not None and known.stamp == stamp:
            return known
        if not path.is_file():
            return None
        body = path.read_bytes()
        variant = _Variant(stamp, body, f'"{hashlib.sha256(body).hexdigest()[:32]}"')
        self._read[path] = variant
        return variant


STATIC_FILES = web.AppKey("static_files", StaticFiles)


async def widget_view(request: web.Request) -> web.Response:
    """`GET /widget.js`: the loader pages embed; a stable URL, so cached briefly."""
    return await request.app[STATIC_FILES].serve(request, "widget.js", cache_control=ENTRY_CACHE)


async def widget_chunk_view(request: web.Request) -> web.Response:
    """`GET /widget/{filename}`: the rest of the widget, named by content hash, cached for good."""
    name = f"widget/{request.match_info['filename']}"
    return await request.app[STATIC_FILES].serve(request, name, cache_control=IMMUTABLE_CACHE)
