"""The token server's error family and the middleware that turns it into JSON.

Every error a client sees is `{"error": {"code", "message", "details"}}` with a
stable `code`. Unexpected exceptions are logged and answered as a 500 with no
trace. Tree:

    ApiError                      any error with an HTTP status and a stable code
    ├── BadRequest        400     malformed JSON, a non-finite number, a repeated key
    ├── Unauthorized      401     missing or wrong API key / signature
    ├── Forbidden         403     origin not allowed
    ├── NotFound          404     unknown or inactive character, unknown session
    ├── PayloadTooLarge   413     body over the limit
    ├── UnsupportedMedia  415     not JSON
    ├── ValidationFailed  422     fields that fail validation (or hold control
    │                             characters, or nest too deep), each named
    ├── LimitReached      429     concurrency limit; carries Retry-After
    └── UpstreamFailed    502     LiveKit's API failed
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from contract.validation import validation_problems

from . import strict_json

BodyModel = TypeVar("BodyModel", bound=BaseModel)

log = logging.getLogger("token_server")


class ApiError(Exception):
    """An error with an HTTP status, a stable code and a human message."""

    status = 500
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.details = details
        self.headers = headers or {}

    def response(self) -> web.Response:
        """The JSON response for this error."""
        body = {"error": {"code": self.code, "message": self.message, "details": self.details}}
        return strict_json.json_response(body, status=self.status, headers=self.headers)


class BadRequest(ApiError):
    """The body is not valid JSON."""

    status, code = 400, "invalid_json"


class Unauthorized(ApiError):
    """Credentials are missing or wrong."""

    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    """The caller may not do this (origin not allowed)."""

    status, code = 403, "origin_not_allowed"


class NotFound(ApiError):
    """The named thing does not exist."""

    status, code = 404, "not_found"


class Conflict(ApiError):
    """The request conflicts with the resource's state."""

    status, code = 409, "conflict"


class PayloadTooLarge(ApiError):
    """The body is over the size limit."""

    status, code = 413, "payload_too_large"


class UnsupportedMedia(ApiError):
    """The body is not `application/json`."""

    status, code = 415, "unsupported_media_type"


class ValidationFailed(ApiError):
    """One or more fields fail validation; `details` lists each."""

    status, code = 422, "validation_error"


class LimitReached(ApiError):
    """A concurrency limit is reached; try again after `Retry-After` seconds."""

    status, code = 429, "concurrency_limit_reached"


class UpstreamFailed(ApiError):
    """LiveKit's API did not do what was asked."""

    status, code = 502, "livekit_unavailable"


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Answer every failure as JSON: domain errors, aiohttp's HTTP errors, and bugs."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        err = ApiError(exc.reason, code=code, headers={k: v for k, v in exc.headers.items() if k == "Allow"})
        err.status = exc.status
        return err.response()
    except Exception as exc:
        if isinstance(exc, ConnectionResetError) and (
            request.transport is None or request.transport.is_closing()
        ):
            # The client went away mid-request (most often mid-body): nothing was done for
            # it and nobody is left to answer, so one quiet line and no traceback.
            log.info(
                "client disconnected mid-request", extra={"path": request.path, "method": request.method}
            )
            return BadRequest("The client disconnected.", code="client_disconnected").response()
        log.exception("unhandled error", extra={"path": request.path, "method": request.method})
        return ApiError("Something went wrong on our side. Please try again.").response()


async def read_json(request: web.Request, *, max_bytes: int) -> Any:
    """The request's JSON body, enforcing media type, size and `strict_json`'s rules.

    Raises:
        UnsupportedMedia, PayloadTooLarge, BadRequest (also a non-finite number or a
        repeated key), ValidationFailed (a control character, or too deep).
    """
    if request.content_type != "application/json":
        raise UnsupportedMedia("Send the body as JSON with 'Content-Type: application/json'.")
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(f"The body is over {max_bytes // 1024} KB.", details={"max_bytes": max_bytes})
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(
                f"The body is over {max_bytes // 1024} KB.", details={"max_bytes": max_bytes}
            )
        chunks.append(chunk)
    try:
        return strict_json.loads(b"".join(chunks))
    except strict_json.BodyRefused as exc:
        if exc.status == 400:
            raise BadRequest(exc.message, code=exc.code) from None
        detail = {"field": exc.field, "type": exc.code, "message": exc.message}
        raise ValidationFailed(exc.message, code=exc.code, details=[detail]) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("The body is not valid JSON: it is nested too deeply.") from None


def parse_body(model: type[BodyModel], raw: Any) -> BodyModel:
    """A JSON body, already read, validated as `model`.

    Raises:
        ValidationFailed: the body is not an object, or naming every bad field.
    """
    if not isinstance(raw, dict):
        raise ValidationFailed(
            "The body must be a JSON object.",
            details=[{"field": "(body)", "type": "dict_type", "message": "must be a JSON object"}],
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        details = validation_problems(exc, root="(body)")
        names = ", ".join(d["field"] for d in details)
        raise ValidationFailed(f"Some fields are not valid: {names}.", details=details) from None
