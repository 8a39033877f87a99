"""Secret values removed from tool-call arguments before they are reported or stored.

The worker redacts when it builds a `ToolCall` event and the token server again when
it validates one, both through `redact_arguments`, so neither trusts the other to
have done it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

REDACTED = "[redacted]"

# Argument names whose values are never kept, matched as parts of the lower-cased
# name with `-` read as `_` (`X-Api-Key`, `accessToken`, `db_password`).
SECRET_NAME_PARTS = (
    "authorization",
    "token",
    "secret",
    "password",
    "passwd",
    "api_key",
    "apikey",
    "cookie",
    "credential",
    "private_key",
)

# Deeper than this, a value is dropped whole: the walk stays bounded and fails closed.
MAX_DEPTH = 64


def is_secret_name(name: str) -> bool:
    """Whether an argument called `name` holds a secret."""
    folded = name.lower().replace("-", "_")
    return any(part in folded for part in SECRET_NAME_PARTS)


def redact_arguments(value: Any, *, _depth: int = 0) -> Any:
    """`value` with every secret-named entry replaced, in dicts and lists at any depth."""
    if _depth > MAX_DEPTH and isinstance(value, dict | list | tuple):
        return REDACTED
    if isinstance(value, dict):
        return {
            k: REDACTED if is_secret_name(str(k)) else redact_arguments(v, _depth=_depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_arguments(v, _depth=_depth + 1) for v in value]
    return value


def redact_url(url: str) -> str:
    """`url` without what may carry a credential: its user-info and its query string.

    `https://user:pw@hooks.example.com/in?token=abc` becomes
    `https://[redacted]@hooks.example.com/in?[redacted]`; the host and path stay.
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    return urlunsplit((parts.scheme, netloc, parts.path, REDACTED if parts.query else "", parts.fragment))
