"""Request headers that did not arrive as text are refused before any handler reads them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from .errors import BadRequest


def _undecodable(value: str) -> bool:
    # aiohttp decodes header bytes as UTF-8 with surrogateescape: a lone surrogate is a
    # byte that was not UTF-8 (latin-1, or a broken sequence).
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


@web.middleware
async def header_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Answer 400 `invalid_header`, naming the header but not echoing its value."""
    for name, value in request.headers.items():
        if _undecodable(value) or _undecodable(name):
            shown = name if not _undecodable(name) else "a header name"
            # Returned, not raised: this middleware sits outside the error middleware.
            return BadRequest(
                f"The {shown} header is not valid UTF-8 text.",
                code="invalid_header",
                details={"header": shown},
            ).response()
    return await handler(request)
