"""Who may call, and what each caller may decide: API keys, session grants, `Origin`, and CORS."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import SecretStr

from contract import Character
from contract.origins import origin_allowed, parse_origin

from .errors import Forbidden, Unauthorized, ValidationFailed
from .grants import GrantClaims, check_grant_is_for, verify_grant
from .schemas import SessionFields

CORS_PATHS = ("/v1/sessions", "/v1/characters")
CORS_ALLOW_HEADERS = "Content-Type, Authorization, Idempotency-Key"
CORS_EXPOSE_HEADERS = "Retry-After"


CallerKind = Literal["server", "browser", "granted"]


@dataclass(frozen=True)
class Caller:
    """Who is asking, and on whose word.

    - `server`: holds an API key; may set every field the character does not lock.
    - `browser`: sends only an `Origin`; may set the character's `browser_overrides`,
      and the metadata it sends is unverified.
    - `granted`: a browser carrying a session grant from the site's backend; the
      grant's fields count as the server's, the page's own as a browser's.
    """

    kind: CallerKind
    origin: str | None
    # Which API key, as a digest that cannot be turned back into the key; None for browsers.
    api_key_id: str | None = None
    grant: GrantClaims | None = field(default=None, repr=False)

    @property
    def has_api_key(self) -> bool:
        """Whether the caller is a server, with a valid API key."""
        return self.kind == "server"


def bearer_token(request: web.Request) -> str | None:
    """The `Authorization: Bearer …` token, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def api_key_valid(token: str, keys: Iterable[SecretStr]) -> bool:
    """Whether `token` is one of `keys`, compared in constant time."""
    return any(hmac.compare_digest(token.encode(), k.get_secret_value().encode()) for k in keys)


def identify_caller(request: web.Request, keys: list[SecretStr], *, grant: str | None = None) -> Caller:
    """The caller, checking any API key or session grant it presents.

    Raises:
        Unauthorized: an API key or grant was presented and is wrong or out of date.
        ValidationFailed: both an API key and a grant were sent.
    """
    origin = request.headers.get("Origin")
    token = bearer_token(request)
    if token is not None and grant is not None:
        raise ValidationFailed(
            "Send an API key or a grant, not both: a server needs no grant.",
            details=[{"field": "grant", "type": "grant_with_api_key", "message": "not with an API key"}],
        )
    if grant is not None:
        return Caller(kind="granted", origin=origin, grant=verify_grant(grant, keys))
    if token is None:
        return Caller(kind="browser", origin=origin)
    if not api_key_valid(token, keys):
        raise Unauthorized("The API key is not valid.", code="invalid_api_key")
    key_id = hashlib.sha256(token.encode()).hexdigest()[:32]
    return Caller(kind="server", origin=origin, api_key_id=key_id)


def require_api_key(request: web.Request, keys: list[SecretStr]) -> None:
    """Raise Unauthorized unless the request carries a valid API key."""
    if not identify_caller(request, keys).has_api_key:
        raise Unauthorized("Send an API key as 'Authorization: Bearer <key>'.", code="api_key_required")


def check_caller_may_start(caller: Caller, character: Character) -> None:
    """Raise unless `caller` may start a session with `character`.

    An API key holder may always. A grant must name the character, and a granted
    browser that sends an `Origin` must be on an allowed one. A plain browser's
    `Origin` must match the character's `allowed_origins`. A request with neither an
    origin nor a credential is server-to-server and needs a key, unless the character
    allows any origin (`*`).

    Raises:
        Forbidden: the origin is not allowed, or the grant is for another character.
        Unauthorized: no origin and no key, for a character that needs one.
    """
    if caller.kind == "server":
        return
    if caller.grant is not None:
        check_grant_is_for(caller.grant, character.slug)
    if caller.origin is None:
        if "*" in character.allowed_origins or caller.kind == "granted":
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


@dataclass(frozen=True)
class Decided:
    """The session's fields as the caller may set them, with whose word the metadata is."""

    overrides: dict[str, Any]
    """Set fields (of `OVERRIDABLE_FIELDS` and `origin_url`) other than the metadata."""
    metadata: dict[str, Any]
    """Verified: from a server or a grant. Fills templates, tool arguments and headers."""
    unverified_metadata: dict[str, Any]
    """From the page itself: shown to the agent labelled as user-supplied, never bound."""


def _set_fields(fields: SessionFields) -> dict[str, Any]:
    return {name: getattr(fields, name) for name in fields.model_fields_set - {"agent", "grant"}}


def decide_fields(caller: Caller, character: Character, body: SessionFields) -> Decided:
    """What the request decides about the session, field by field.

    A server's and a grant's fields override anything the character does not lock.
    A page's own fields must be among the character's `browser_overrides` (less what
    its grant already sets); its metadata is kept apart, as unverified.

    Raises:
        Forbidden: `override_not_allowed`, naming the fields a page may not set.
        ValidationFailed: `locked_field` for every locked field that was set.
    """
    from_page = _set_fields(body)
    if caller.kind == "server":
        vouched, from_page = from_page, {}
    else:
        vouched = _set_fields(caller.grant) if caller.grant is not None else {}
        may = set(character.browser_overrides) - (set(vouched) - {"metadata"}) | {"origin_url"}
        refused = sorted(set(from_page) - may)
        if refused:
            raise Forbidden(
                f"This page may not set {', '.join(refused)} for this character: "
                "send them from your server with an API key, or in a session grant.",
                code="override_not_allowed",
                details={"fields": refused, "allowed": sorted(may - {"origin_url"})},
            )
    locked = [
        {"field": f, "type": "locked_field", "message": "this character does not allow overriding it"}
        for f in character.locked_fields
        if f in vouched or f in from_page
    ]
    if locked:
        raise ValidationFailed(
            f"Some fields are not valid: {', '.join(p['field'] for p in locked)}.", details=locked
        )
    unverified = from_page.pop("metadata", None) or {}
    verified = vouched.pop("metadata", None) or {}
    return Decided(overrides={**from_page, **vouched}, metadata=verified, unverified_metadata=unverified)


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
