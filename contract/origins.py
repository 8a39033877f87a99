"""Allowed-origin patterns: which web pages may start a session with a character.

A pattern is one of:
- `*`: any origin;
- an exact origin, `https://example.com` or `http://localhost:8080`;
- an origin with any port, `http://localhost:*`;
- subdomains of a domain, `https://*.example.com`: one or more labels before the
  domain (`a.example.com`, `a.b.example.com`), each non-empty and of letters, digits
  and hyphens as in a pattern's own host; not the domain itself, nor `.example.com`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
_PATTERN = re.compile(
    r"^(?P<scheme>https?)://(?P<wild>\*\.)?(?P<host>\[[0-9a-f:.]+\]|[a-z0-9-]+(?:\.[a-z0-9-]+)*)"
    r"(?::(?P<port>\*|\d{1,5}))?/?$"
)
_LABEL = re.compile(r"[a-z0-9-]+")


@dataclass(frozen=True)
class Origin:
    """A normalised web origin: scheme, host and explicit port."""

    scheme: str
    host: str
    port: int


def parse_origin(value: str) -> Origin | None:
    """Parse an `Origin` header value; None when it is not an http(s) origin."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or parts.username or parts.password:
        return None
    return Origin(scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme])


def validate_origin_pattern(pattern: str) -> str:
    """Check one `allowed_origins` entry and return it lower-cased.

    Raises:
        ValueError: the pattern has a path, a bad scheme or a malformed host.
    """
    value = pattern.strip().lower()
    if value == "*":
        return value
    match = _PATTERN.match(value)
    if not match:
        raise ValueError(
            f"{pattern!r} is not an origin pattern: use '*', 'https://example.com', "
            "'http://localhost:*' or 'https://*.example.com'"
        )
    port = match["port"]
    if port not in (None, "*") and not 0 < int(port) < 65536:
        raise ValueError(f"{pattern!r} has an invalid port")
    return value.rstrip("/")


def origin_allowed(origin: Origin, patterns: list[str]) -> bool:
    """Whether `origin` matches any of the (validated) patterns."""
    return any(_matches(origin, p) for p in patterns)


def _matches(origin: Origin, pattern: str) -> bool:
    if pattern == "*":
        return True
    match = _PATTERN.match(pattern)
    if match is None or match["scheme"] != origin.scheme:
        return False
    port = match["port"]
    if port != "*" and int(port or _DEFAULT_PORTS[origin.scheme]) != origin.port:
        return False
    host = match["host"].strip("[]")
    if match["wild"]:
        subdomain = origin.host.removesuffix("." + host)
        return subdomain != origin.host and all(_LABEL.fullmatch(label) for label in subdomain.split("."))
    return origin.host == host
