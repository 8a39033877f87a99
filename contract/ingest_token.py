"""The ingest token: how the worker proves to the token server which session it reports for.

The worker posts a session's events with `Authorization: Bearer <ingest token>`: a
short-lived HS256 JWT signed with the LiveKit API secret that both services already
hold (issuer = API key, subject = session id, audience = `INGEST_AUDIENCE`). So no new
secret is shared, and a browser (which never has the secret) cannot forge one. The
worker signs (`agent/ingest.py`); the token server verifies (`token_server/worker_events.py`).
"""

from __future__ import annotations

import datetime as dt
import warnings

import jwt

INGEST_AUDIENCE = "oshara-ingest"
SHORT_KEY_WARNING = (
    "LIVEKIT_API_SECRET is shorter than 32 bytes: fine for livekit-server --dev, not for production"
)


def sign_ingest_token(api_key: str, api_secret: str, session_id: str, ttl_seconds: int = 300) -> str:
    """A short-lived token that lets the worker report events for one session."""
    now = dt.datetime.now(dt.UTC)
    claims = {
        "iss": api_key,
        "sub": session_id,
        "aud": INGEST_AUDIENCE,
        "nbf": now - dt.timedelta(seconds=5),
        "exp": now + dt.timedelta(seconds=ttl_seconds),
    }
    return jwt.encode(claims, api_secret, algorithm="HS256")


def verify_ingest_token(token: str, api_key: str, api_secret: str) -> str:
    """The session id an ingest token was signed for.

    Raises:
        jwt.InvalidTokenError: bad signature, wrong issuer or audience, expired.
    """
    claims = jwt.decode(
        token,
        api_secret,
        algorithms=["HS256"],
        audience=INGEST_AUDIENCE,
        issuer=api_key,
        options={"require": ["exp", "sub", "iss", "aud"]},
        leeway=5,
    )
    return str(claims["sub"])


def quiet_short_secret(api_secret: str) -> bool:
    """For a secret under 32 bytes, silence PyJWT's key-length warning; True when it did.

    PyJWT warns about a short HMAC key on the tokens it signs (the dev secret `secret`
    is 6 bytes), from every call site in every process; a service says
    `SHORT_KEY_WARNING` once at start-up instead.
    """
    if len(api_secret.encode()) >= 32:
        return False
    warnings.filterwarnings("ignore", message="The HMAC key is .* bytes long")
    return True
