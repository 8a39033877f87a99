"""Fetching reference audio for voice cloning, from an untrusted URL.

The URL comes from whoever started the session, so it is fetched with an SSRF guard:

- http and https only;
- every address the host resolves to must be public (not loopback, private,
  link-local, multicast, reserved, unspecified or cloud metadata), and so must every
  IPv4 address an IPv6 address carries (IPv4-mapped and -compatible, 6to4, Teredo,
  NAT64), since a relay or translator on the path delivers to it. The check runs in
  the connector's resolver, i.e. at connect time after DNS, so a name that changes its
  answer between a check and the connection (DNS rebinding) cannot slip through;
- redirects are followed by hand, at most `reference_max_redirects`, each target
  checked again;
- one overall time limit, a size limit checked against Content-Length and again while
  the body streams in;
- the body must decode as audio (WAV, MP3, OGG, FLAC through libsndfile) of an
  allowed duration.

Every refusal is a `ReferenceAudioRejected` with a short reason code; the service
then speaks in the model's default voice and reports the code.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

# Reason codes, as reported in the X-Voice-Fallback response header.
REASON_BAD_URL = "bad_url"
REASON_SCHEME = "scheme_not_allowed"
REASON_ADDRESS = "address_not_allowed"
REASON_REDIRECTS = "too_many_redirects"
REASON_TIMEOUT = "timeout"
REASON_TOO_LARGE = "too_large"
REASON_HTTP_STATUS = "http_status"
REASON_FETCH_FAILED = "fetch_failed"
REASON_NOT_AUDIO = "not_audio"
REASON_TOO_SHORT = "too_short"
REASON_TOO_LONG = "too_long"

_METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
# IPv6 forms whose last 32 bits are an IPv4 address: IPv4-compatible (::a.b.c.d),
# IPv4-translated (::ffff:0:a.b.c.d) and NAT64's well-known prefix (RFC 6052).
# NAT64's local-use 64:ff9b:1::/48 (RFC 8215) places it by prefix length, so it is
# refused as a whole.
_LOW_32_BITS_IPV4 = (
    ipaddress.ip_network("::/96"),
    ipaddress.ip_network("::ffff:0:0/96"),
    ipaddress.ip_network("64:ff9b::/96"),
)
_NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK_BYTES = 64 * 1024


class ReferenceAudioRejected(Exception):
    """The reference audio cannot be used; `reason` is one of the REASON_* codes."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class FetchLimits:
    """Limits on fetching one reference clip."""

    timeout_s: float = 10.0
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 3
    min_seconds: float = 3.0
    max_seconds: float = 60.0
    allowed_hosts: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ReferenceClip:
    """A fetched, decoded-and-checked reference clip."""

    data: bytes
    sha256: str
    duration_s: float
    sample_rate: int


def address_allowed(address: str) -> bool:
    """Whether a resolved IP address may be connected to for reference audio."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv4Address):
        return _public(ip)
    if ip.ipv4_mapped is not None:
        return _public(ip.ipv4_mapped)  # the socket connects to the IPv4 address itself
    if ip in _NAT64_LOCAL_USE:
        return False
    return _public(ip) and all(_public(v4) for v4 in _embedded_ipv4(ip))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries by a tunnelling or translation form."""
    embedded: list[ipaddress.IPv4Address] = []
    if ip.sixtofour is not None:  # 2002:AABB:CCDD::/48
        embedded.append(ip.sixtofour)
    if ip.teredo is not None:  # 2001:0::/32: the server, then the client (de-obfuscated)
        embedded.extend(ip.teredo)
    if any(ip in network for network in _LOW_32_BITS_IPV4):
        embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF))
    return embedded


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if ip in _METADATA_ADDRESSES:
        return False
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def redacted_host(url: str) -> str:
    """The host of `url` for logs: never the credentials, path or query."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


class GuardedResolver(AbstractResolver):
    """A resolver that refuses hosts resolving to any non-public address.

    It wraps another resolver (aiohttp's default, or one a test injects) and checks
    every address it returns; one bad address refuses the whole host, so a name that
    answers with both a public and a private address cannot be used to reach the
    private one.
    """

    def __init__(self, inner: AbstractResolver | None = None, *, allowed_hosts: frozenset[str] = frozenset()):
        self._inner = inner or aiohttp.ThreadedResolver()
        self._allowed_hosts = allowed_hosts
        self.refused_host: str | None = None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve `host` and refuse it unless every address is public (or allow-listed)."""
        results = await self._inner.resolve(host, port, family)
        if host.lower() in self._allowed_hosts:
            return results
        if not results or not all(address_allowed(r["host"]) for r in results):
            self.refused_host = host
            raise OSError(f"reference audio host resolves to a refused address: {host}")
        return results

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self._inner.close()


def check_url(url: str, limits: FetchLimits) -> None:
    """Refuse a URL by its shape before any connection: scheme and IP-literal hosts."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        raise ReferenceAudioRejected(REASON_BAD_URL) from None
    if parts.scheme not in ("http", "https"):
        raise ReferenceAudioRejected(REASON_SCHEME, parts.scheme)
    if not host:
        raise ReferenceAudioRejected(REASON_BAD_URL, "no host")
    if host.lower() in limits.allowed_hosts:
        return
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return  # a name: checked by GuardedResolver after DNS
    # aiohttp does not call the resolver for IP literals, so they are checked here.
    if not address_allowed(host):
        raise ReferenceAudioRejected(REASON_ADDRESS, host)


class ReferenceFetcher:
    """Fetches and checks reference clips.

    Args:
        limits: Time, size, redirect and duration limits.
        resolver: The resolver behind the guard; tests inject one that answers
            private addresses for made-up names.
    """

    def __init__(self, limits: FetchLimits, *, resolver: AbstractResolver | None = None) -> None:
        self._limits = limits
        self._resolver = resolver

    @property
    def limits(self) -> FetchLimits:
        """The limits this fetcher applies."""
        return self._limits

    async def fetch(self, url: str, *, min_seconds: float | None = None) -> ReferenceClip:
        """Fetch `url`, check it, and return the clip.

        Args:
            url: The untrusted reference audio URL.
            min_seconds: The voice model's own minimum duration, when above the limits'.

        Raises:
            ReferenceAudioRejected: the URL, its host, its response or its audio failed a check.
        """
        limits = self._limits
        check_url(url, limits)
        guard = GuardedResolver(self._resolver, allowed_hosts=limits.allowed_hosts)
        # The inner resolver may be shared (injected); only a resolver we made is closed.
        connector = aiohttp.TCPConnector(resolver=guard, use_dns_cache=False, force_close=True)
        try:
            async with (
                asyncio.timeout(limits.timeout_s),
                aiohttp.ClientSession(connector=connector, trust_env=False) as session,
            ):
                data, content_type = await self._fetch_body(session, guard, url)
        except TimeoutError:
            raise ReferenceAudioRejected(REASON_TIMEOUT) from None
        finally:
            if self._resolver is None:
                await guard.close()
        if content_type.startswith(("text/", "application/json", "application/xml")):
            raise ReferenceAudioRejected(REASON_NOT_AUDIO, content_type)
        floor = max(limits.min_seconds, min_seconds or 0.0)
        return await asyncio.to_thread(_check_audio, data, floor, limits.max_seconds)

    async def _fetch_body(
        self, session: aiohttp.ClientSession, guard: GuardedResolver, url: str
    ) -> tuple[bytes, str]:
        limits = self._limits
        for _ in range(limits.max_redirects + 1):
            try:
                async with session.get(url, allow_redirects=False) as resp:
                    if resp.status in _REDIRECT_STATUSES:
                        location = resp.headers.get("Location")
                        if not location:
                            raise ReferenceAudioRejected(REASON_HTTP_STATUS, str(resp.status))
                        url = urljoin(url, location)
                        check_url(url, limits)
                        continue
                    if resp.status != 200:
                        raise ReferenceAudioRejected(REASON_HTTP_STATUS, str(resp.status))
                    if resp.content_length is not None and resp.content_length > limits.max_bytes:
                        raise ReferenceAudioRejected(REASON_TOO_LARGE, str(resp.content_length))
                    body = bytearray()
                    async for chunk in resp.content.iter_chunked(_CHUNK_BYTES):
                        body += chunk
                        if len(body) > limits.max_bytes:
                            raise ReferenceAudioRejected(REASON_TOO_LARGE)
                    return bytes(body), resp.headers.get("Content-Type", "").lower()
            except aiohttp.ClientConnectorError:
                if guard.refused_host is not None:
                    raise ReferenceAudioRejected(REASON_ADDRESS, guard.refused_host) from None
                raise ReferenceAudioRejected(REASON_FETCH_FAILED) from None
            except (aiohttp.ClientError, OSError):
                raise ReferenceAudioRejected(REASON_FETCH_FAILED) from None
        raise ReferenceAudioRejected(REASON_REDIRECTS)


def _check_audio(data: bytes, min_seconds: float, max_seconds: float) -> ReferenceClip:
    """Check the duration from the header, then decode the whole clip (WAV, MP3, OGG, FLAC)."""
    import soundfile  # imported here: the token server and plugin never decode audio

    try:
        info = soundfile.info(io.BytesIO(data))
    except (RuntimeError, ValueError, TypeError):
        raise ReferenceAudioRejected(REASON_NOT_AUDIO) from None
    if info.samplerate <= 0 or info.frames <= 0:
        raise ReferenceAudioRejected(REASON_NOT_AUDIO)
    duration = info.frames / info.samplerate
    if duration < min_seconds:
        raise ReferenceAudioRejected(REASON_TOO_SHORT, f"{duration:.1f}s")
    if duration > max_seconds:
        raise ReferenceAudioRejected(REASON_TOO_LONG, f"{duration:.1f}s")
    try:
        samples, _ = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (RuntimeError, ValueError, TypeError):
        raise ReferenceAudioRejected(REASON_NOT_AUDIO) from None
    decoded = len(samples) / info.samplerate
    # Some containers (MP3 without a Xing header) only know their length once decoded.
    if decoded < min_seconds:
        raise ReferenceAudioRejected(REASON_TOO_SHORT, f"{decoded:.1f}s")
    if decoded > max_seconds:
        raise ReferenceAudioRejected(REASON_TOO_LONG, f"{decoded:.1f}s")
    if not samples.any():
        raise ReferenceAudioRejected(REASON_NOT_AUDIO, "silent")
    return ReferenceClip(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        duration_s=decoded,
        sample_rate=int(info.samplerate),
    )


def limits_from(settings: Any) -> FetchLimits:
    """FetchLimits from the service settings."""
    return FetchLimits(
        timeout_s=settings.reference_timeout_s,
        max_bytes=settings.reference_max_bytes,
        max_redirects=settings.reference_max_redirects,
        min_seconds=settings.reference_min_seconds,
        max_seconds=settings.reference_max_seconds,
        allowed_hosts=frozenset(h.lower() for h in settings.reference_allowed_hosts),
    )
