"""How the token server listens: requests aiohttp's parser refuses, answered as JSON.

They are answered in the error shape and logged without the bytes they carried.

aiohttp answers a request it cannot parse (a request line or header over 8190 bytes,
more than 128 headers, a request line that is not HTTP) itself, before any middleware
runs: as `text/plain` with the parser's message, which quotes the offending bytes,
and it logs that message with a traceback. For an oversized `Authorization` header
those bytes are the start of a credential.

- The log: `handler_args={"logger": PARSER_LOG}` (`create_app`) is aiohttp's documented
  way to give the server its logger; `ParserErrorLog` turns a parser error into one
  line naming its kind, never its message. It holds under any runner, the tests' too.
- The body: aiohttp has no hook for it (aio-libs/aiohttp#3287), so `TokenServerRunner`
  builds the server with a `RequestHandler` whose `handle_error` answers JSON.
  `python -m token_server` serves through it (`run`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, MutableMapping
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, BadStatusLine, HttpProcessingError, LineTooLong

from .errors import ApiError

log = logging.getLogger("token_server.http")


class ParserErrorLog(logging.LoggerAdapter):
    """aiohttp's server logger, but a refused request is one line without its bytes."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        """Log as asked, unless the exception is the parser's: then one quiet line."""
        exc = kwargs.get("exc_info")
        if isinstance(exc, HttpProcessingError):
            remote = args[0] if args else None
            # aiohttp logs a first request that is not HTTP at all at DEBUG: noise on the internet.
            self.logger.log(
                min(level, logging.INFO),
                "refused a request the HTTP parser could not read",
                extra={"status": exc.code, "kind": type(exc).__name__, "remote": remote},
            )
            return
        self.logger.log(level, msg, *args, **kwargs)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        """Pass the call on unchanged (no extra of the adapter's own)."""
        return msg, kwargs


PARSER_LOG = ParserErrorLog(logging.getLogger("aiohttp.server"))


def parser_error(exc: HttpProcessingError) -> ApiError:
    """The API error for a request aiohttp's parser refused; its message quotes nothing."""
    if isinstance(exc, LineTooLong):
        message = "The request line or a header is over 8190 bytes."
    elif isinstance(exc, BadStatusLine):
        message = "The request line is not valid HTTP/1.1."
    elif isinstance(exc, BadHttpMessage) and exc.message == "Too many headers received":
        message = "The request has more than 128 headers."
    else:
        message = "The request is not valid HTTP/1.1."
    err = ApiError(message, code="bad_http_request")
    err.status = exc.code if 400 <= exc.code < 500 else 400
    return err


class _JsonErrorRequestHandler(web.RequestHandler):
    # aiohttp calls handle_error for a request its parser refused, and for an exception
    # that escaped every middleware; the base class logs (through PARSER_LOG) and checks
    # that nothing was sent yet, then answers text: answer the error shape instead.
    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)
        if isinstance(exc, HttpProcessingError):
            err = parser_error(exc)
        else:
            err = ApiError("Something went wrong on our side. Please try again.")
            err.status = status
        response = err.response()
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    def __call__(self) -> web.RequestHandler:
        return _JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class TokenServerRunner(web.AppRunner):
    """An `AppRunner` whose connections answer parser errors in the error shape."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The same server (handler, request factory, handler arguments), one method apart.
        server.__class__ = _JsonErrorServer
        return server


def run(app: web.Application, *, host: str, port: int, on_ready: Callable[[], None]) -> None:
    """Serve `app` on `host:port` until SIGINT or SIGTERM, as `web.run_app` would."""

    async def serve() -> None:
        runner = TokenServerRunner(app, handle_signals=True)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            on_ready()
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(web.GracefulExit, KeyboardInterrupt):
        asyncio.run(serve())
