"""Who may call: API keys for servers, the `Origin` header for browsers, and CORS."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp import web
from pydantic import SecretStr

from characters import Character
from characters.origins import origin_allowed, parse_origin

from .errors import Forbidden, Unauthorized

CORS_PATHS = ("/v1/sessions", "/v1/characters")
CORS_ALLOW_HEADERS = "Content-Type, Authorization, Idempotency-Key"
CORS_EXPOSE_HEADERS = "Retry-After"


@dataclass(frozen=True)
class Caller:
    """Who is asking: a holder of an API key, or a browser on `origin`."""

    has_api_key: bool
    origin: str | None
    # Which API key, as a digest that cannot be turned back into the key; None for browsers.
    api_key_id: str | None = None


def bearer_token(request: web.Request) -> str | None:
    """The `Authorization: Bearer …` token, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def api_key_valid(token: str, keys: Iterable[SecretStr]) -> bool:
    """Whether `token` is one of `keys`, compared in constant time."""
    return any(hmac.compare_digest(token.encode(), k.get_secret_value().encode()) for k in keys)


def identify_caller(request: web.Request, keys: list[SecretStr]) -> Caller:
    """The caller, checking any API key it presents.

    Raises:
        Unauthorized: an API key was presented and is wrong.
    """
    token = bearer_token(request)
    if token is not None and not api_key_valid(token, keys):
        raise Unauthorized("The API key is not valid.", code="invalid_api_key")
    key_id = hashlib.sha256(token.encode()).hexdigest()[:32] if token is not None else None
    return Caller(has_api_key=token is not None, origin=request.headers.get("Origin"), api_key_id=key_id)


def require_api_key(request: web.Request, keys: list[SecretStr]) -> None:
    """Raise Unauthorized unless the request carries a valid API key."""
    if not identify_caller(request, keys).has_api_key:
        raise Unauthorized("Send an API key as 'Authorization: Bearer <key>'.", code="api_key_required")


def check_caller_may_start(caller: Caller, character: Character) -> None:
    """Raise unless `caller` may start a session with `character`.

    An API key holder may always. A browser's `Origin` must match the character's
    `allowed_origins`. A request with neither is server-to-server and needs a key,
    unless the character allows any origin (`*`).

    Raises:
        Forbidden: the origin is not allowed.
        Unauthorized: no origin and no key, for a character that needs one.
    """
    if caller.has_api_key:
        return
    if caller.origin is None:
        if "*" in character.allowed_origins:
            return
        raise Unauthorized(
            "Requests without an Origin header are server-to-server and need an API key.",
            code="api_key_required",
        )
    origin = parse_origin(caller.origin)
    if "*" in character.allowed_origins or (origin and origin_allowed(origin, character.allowed_origins)):
        return
    raise Forbidden(
        "This site is not allowed to start sessions with this character.",
        details={"origin": caller.origin[:200]},
    )


def cors_middleware(
    characters: Callable[[], Iterable[Character]],
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """CORS for the browser-facing paths.

    An origin is answered when some active character allows it; the POST handler
    then checks the character actually asked for. Errors carry the headers too, so
    the widget can read a 403 or 429 and explain it.
    """

    def allowed(origin_header: str) -> bool:
        origin = parse_origin(origin_header)
        return any(
            c.active and ("*" in c.allowed_origins or (origin and origin_allowed(origin, c.allowed_origins)))
            for c in characters()
        )

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        on_path = request.path in CORS_PATHS
        if request.method == "OPTIONS" and on_path and request.headers.get("Access-Control-Request-Method"):
            if origin is None or not allowed(origin):
                # Returned, not raised: this middleware sits outside the error middleware.
                return Forbidden("This site is not allowed to start sessions.").response()
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                    "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
                    "Access-Control-Max-Age": "600",
                    "Vary": "Origin",
                },
            )
        response = await handler(request)
        if on_path and origin is not None and allowed(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
            response.headers["Vary"] = "Origin"
        return response

    return middleware
