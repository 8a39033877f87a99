"""Session grants: what a site's own backend vouches for, carried by its page.

A grant is a JWT (HS256) that the site's backend signs with one of its token-server
API keys and hands to its page, which sends it as `grant` in `POST /v1/sessions`.
Its claims name the character (`agent`), carry the verified `metadata`, any
`mcp_headers` and any overrides, and bound it in time: `iat` and `exp` at most
`MAX_LIFETIME_SECONDS` apart, and a `jti` that works once. Nothing secret is in
the page: the key stays on the site's server, and a grant taken from the page is
good for one session, within minutes.

The signature is checked with PyJWT; the claims are read with the same strict JSON
parser and the same field limits as a request body.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import warnings
from collections.abc import Iterable
from typing import Any

import jwt
from jwt.warnings import InsecureKeyLengthWarning
from pydantic import Field, SecretStr, ValidationError

from contract.validation import error_field

from . import strict_json
from .errors import Forbidden, Unauthorized
from .schemas import MAX_GRANT_CHARS, SessionFields

MAX_LIFETIME_SECONDS = 600
MIN_KEY_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as its hash
# Clock skew tolerated between the site's server and ours.
LEEWAY_SECONDS = 30

_JWS = jwt.PyJWS(algorithms=["HS256"])
_LATEST = 10**10  # seconds since 1970, in the year 2286: keeps times in range of a datetime


class GrantClaims(SessionFields):
    """The payload of a session grant: the session's fields, and when and once."""

    iat: int = Field(ge=0, le=_LATEST)
    exp: int = Field(ge=0, le=_LATEST)
    jti: str = Field(pattern=r"^[!-~]{8,128}$")
    nbf: int | None = Field(None, ge=0, le=_LATEST)

    @property
    def forget_after(self) -> dt.datetime:
        """When the grant can no longer be presented, so its id need not be kept."""
        return dt.datetime.fromtimestamp(self.exp + LEEWAY_SECONDS + 1, dt.UTC)


def warn_about_short_keys(keys: Iterable[SecretStr], log: logging.Logger) -> None:
    """Log once for each API key too short to sign grants with strongly."""
    for number, key in enumerate(keys, start=1):
        if len(key.get_secret_value().encode()) < MIN_KEY_BYTES:
            log.warning(
                "API key %d of TOKEN_SERVER_API_KEYS is shorter than %d bytes: session grants signed "
                "with it are easier to forge. Use long random keys (openssl rand -hex 32).",
                number,
                MIN_KEY_BYTES,
            )


def _invalid(message: str) -> Unauthorized:
    return Unauthorized(message, code="invalid_grant")


def verify_grant(token: str, keys: Iterable[SecretStr], *, now: float | None = None) -> GrantClaims:
    """The claims of `token` if one of `keys` signed it and it is in date.

    Raises:
        Unauthorized: `invalid_grant` (malformed, badly signed, bad claims or a lifetime
            over ten minutes) or `grant_expired`.
    """
    if len(token) > MAX_GRANT_CHARS:
        raise _invalid(f"The grant is over {MAX_GRANT_CHARS} characters.")
    payload: bytes | None = None
    for key in keys:
        try:
            with warnings.catch_warnings():
                # A short key is the operator's choice, warned about once at startup.
                warnings.simplefilter("ignore", InsecureKeyLengthWarning)
                payload = _JWS.decode(token, key.get_secret_value(), algorithms=["HS256"])
            break
        except jwt.InvalidSignatureError:
            continue
        except jwt.InvalidTokenError:
            raise _invalid("The grant is not a JWT signed with HS256.") from None
    if payload is None:
        raise _invalid("The grant is not signed with any of this server's API keys.")
    try:
        raw: Any = strict_json.loads(payload)
        claims = GrantClaims.model_validate(raw)
    except (ValueError, UnicodeDecodeError, RecursionError, strict_json.BodyRefused, ValidationError) as exc:
        fields = (
            ", ".join(error_field(e, root="(claims)") for e in exc.errors())
            if isinstance(exc, ValidationError)
            else "(claims)"
        )
        raise _invalid(f"The grant's claims are not valid: {fields}.") from None
    now = time.time() if now is None else now
    if claims.exp - claims.iat > MAX_LIFETIME_SECONDS:
        raise _invalid(f"A grant must expire within {MAX_LIFETIME_SECONDS // 60} minutes of being issued.")
    if claims.iat > now + LEEWAY_SECONDS or (claims.nbf is not None and claims.nbf > now + LEEWAY_SECONDS):
        raise _invalid("The grant is not valid yet: check the clock of the server that signed it.")
    if claims.exp + LEEWAY_SECONDS < now:
        raise Unauthorized("The grant has expired; ask the site for a new one.", code="grant_expired")
    return claims


def check_grant_is_for(claims: GrantClaims, agent: str) -> None:
    """Raise Forbidden unless the grant names the character the request asks for."""
    if claims.agent != agent:
        raise Forbidden(
            "The grant was issued for another character.",
            code="grant_not_for_character",
            details={"grant_agent": claims.agent, "agent": agent},
        )
