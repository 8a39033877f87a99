"""The reference-audio SSRF guard and clip checks, with the allow-list off.

The clip server listens on 127.0.0.1. The guarded fetches below reach it only
through the name `clips.test`, allow-listed and resolved by an injected resolver;
everything else goes through the real guard.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from testkit.tts.clips import clip_app, clip_bytes
from testkit.tts.resolver import TableResolver
from voice_service.reference import (
    REASON_ADDRESS,
    REASON_NOT_AUDIO,
    REASON_REDIRECTS,
    REASON_SCHEME,
    REASON_TIMEOUT,
    REASON_TOO_LARGE,
    REASON_TOO_LONG,
    REASON_TOO_SHORT,
    FetchLimits,
    ReferenceAudioRejected,
    ReferenceFetcher,
    address_allowed,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def clips(aiohttp_server: Callable[..., Awaitable[Any]]) -> tuple[int, TableResolver]:
    server = await aiohttp_server(clip_app())
    resolver = TableResolver(
        {
            "clips.test": ["127.0.0.1"],
            "internal.test": ["192.168.1.20"],
            "mixed.test": ["93.184.216.34", "10.1.2.3"],
            "metadata.test": ["169.254.169.254"],
            "sixtofour.test": ["2002:c0a8:114::1"],  # 6to4 around 192.168.1.20
        }
    )
    return server.port, resolver


def fetcher(resolver: TableResolver, **limits: Any) -> ReferenceFetcher:
    values: dict[str, Any] = {"allowed_hosts": frozenset({"clips.test"}), "timeout_s": 5.0}
    values.update(limits)
    return ReferenceFetcher(FetchLimits(**values), resolver=resolver)


async def rejected(f: ReferenceFetcher, url: str, **kwargs: Any) -> str:
    with pytest.raises(ReferenceAudioRejected) as info:
        await f.fetch(url, **kwargs)
    return info.value.reason


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
async def test_a_good_clip_in_each_format_is_accepted(clips: tuple[int, TableResolver], fmt: str) -> None:
    port, resolver = clips
    clip = await fetcher(resolver).fetch(f"http://clips.test:{port}/clip.{fmt}")
    assert 3.5 < clip.duration_s < 4.5
    assert len(clip.sha256) == 64


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "[::1]", "10.0.0.7", "172.16.5.4", "172.31.255.1", "192.168.0.10", "169.254.169.254",
     "[fd00:ec2::254]", "[::ffff:127.0.0.1]", "[2002:7f00:1::1]", "[2002:a9fe:a9fe::]", "[::127.0.0.1]",
     "[64:ff9b::10.0.0.1]", "0.0.0.0", "224.0.0.1"],  # noqa: S104 - a URL host, not a bind
)  # fmt: skip
async def test_ip_literals_that_are_not_public_are_refused(
    clips: tuple[int, TableResolver], host: str
) -> None:
    port, resolver = clips
    f = ReferenceFetcher(FetchLimits(timeout_s=5.0), resolver=resolver)  # no allow-list at all
    assert await rejected(f, f"http://{host}:{port}/clip.wav") == REASON_ADDRESS


@pytest.mark.parametrize("name", ["internal.test", "mixed.test", "metadata.test", "sixtofour.test"])
async def test_names_resolving_to_private_addresses_are_refused_after_dns(
    clips: tuple[int, TableResolver], name: str
) -> None:
    port, resolver = clips
    assert await rejected(fetcher(resolver), f"http://{name}:{port}/clip.wav") == REASON_ADDRESS
    assert name in resolver.asked


async def test_the_clip_server_itself_is_refused_without_the_allow_list(
    clips: tuple[int, TableResolver],
) -> None:
    port, resolver = clips
    f = ReferenceFetcher(FetchLimits(timeout_s=5.0), resolver=resolver)
    assert await rejected(f, f"http://clips.test:{port}/clip.wav") == REASON_ADDRESS


@pytest.mark.parametrize(
    "target", ["http://192.168.1.1/x.wav", "http://internal.test/x.wav", "http://[::1]/x.wav"]
)
async def test_a_redirect_to_a_private_address_is_refused(
    clips: tuple[int, TableResolver], target: str
) -> None:
    port, resolver = clips
    assert (
        await rejected(fetcher(resolver), f"http://clips.test:{port}/redirect?to={target}") == REASON_ADDRESS
    )


async def test_a_redirect_to_another_scheme_is_refused(clips: tuple[int, TableResolver]) -> None:
    port, resolver = clips
    url = f"http://clips.test:{port}/redirect?to=file:///etc/passwd"
    assert await rejected(fetcher(resolver), url) == REASON_SCHEME


async def test_three_redirects_are_followed_and_four_are_not(clips: tuple[int, TableResolver]) -> None:
    port, resolver = clips
    clip = await fetcher(resolver).fetch(f"http://clips.test:{port}/hops/3")
    assert clip.duration_s > 3
    assert await rejected(fetcher(resolver), f"http://clips.test:{port}/hops/4") == REASON_REDIRECTS


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/a.wav", "gopher://x/", "data:audio/wav,AAAA"]
)
async def test_schemes_other_than_http_are_refused(clips: tuple[int, TableResolver], url: str) -> None:
    _, resolver = clips
    assert await rejected(fetcher(resolver), url) == REASON_SCHEME
    assert resolver.asked == []


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
async def test_an_11_mb_body_is_refused(clips: tuple[int, TableResolver], path: str) -> None:
    port, resolver = clips
    assert await rejected(fetcher(resolver), f"http://clips.test:{port}{path}") == REASON_TOO_LARGE


async def test_a_stalling_body_times_out(clips: tuple[int, TableResolver]) -> None:
    port, resolver = clips
    assert (
        await rejected(fetcher(resolver, timeout_s=0.5), f"http://clips.test:{port}/stall") == REASON_TIMEOUT
    )


@pytest.mark.parametrize("path", ["/page.html", "/html-as-audio"])
async def test_an_html_page_is_not_audio(clips: tuple[int, TableResolver], path: str) -> None:
    port, resolver = clips
    assert await rejected(fetcher(resolver), f"http://clips.test:{port}{path}") == REASON_NOT_AUDIO


async def test_a_one_second_clip_is_too_short(clips: tuple[int, TableResolver]) -> None:
    port, resolver = clips
    assert await rejected(fetcher(resolver), f"http://clips.test:{port}/short.wav") == REASON_TOO_SHORT


async def test_a_two_minute_clip_is_too_long(clips: tuple[int, TableResolver]) -> None:
    port, resolver = clips
    assert await rejected(fetcher(resolver), f"http://clips.test:{port}/long.wav") == REASON_TOO_LONG


async def test_the_turbo_model_needs_more_than_five_seconds(clips: tuple[int, TableResolver]) -> None:
    port, resolver = clips
    url = f"http://clips.test:{port}/clip.wav"  # 4 seconds
    assert await rejected(fetcher(resolver), url, min_seconds=5.0) == REASON_TOO_SHORT


def test_address_classification() -> None:
    assert address_allowed("93.184.216.34")
    assert address_allowed("2606:2800:220:1:248:1893:25c8:1946")
    for bad in ["127.0.0.1", "::1", "10.1.1.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "fd00:ec2::254",
                "100.64.0.1", "::ffff:10.0.0.1", "ff02::1", "240.0.0.1", "not-an-ip"]:  # fmt: skip
        assert not address_allowed(bad), bad


@pytest.mark.parametrize(
    "address",
    [
        "2002:7f00:1::1",  # 6to4 around 127.0.0.1
        "2002:a00:7::",  # 6to4 around 10.0.0.7
        "2002:c0a8:101:1::1",  # 6to4 around 192.168.1.1, any subnet and host after it
        "2002:a9fe:a9fe::1",  # 6to4 around 169.254.169.254, the metadata address
        "2002:6440:1::",  # 6to4 around 100.64.0.1, shared address space
        "::10.0.0.1",  # IPv4-compatible
        "::127.0.0.1",
        "::ffff:0:192.168.1.1",  # IPv4-translated
        "64:ff9b::10.0.0.1",  # NAT64, well-known prefix
        "64:ff9b::169.254.169.254",
        "64:ff9b:1::a00:1",  # NAT64, local-use prefix
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
        "2001:0:c0a8:101:8000:63bf:3fff:fdd2",  # Teredo, server 192.168.1.1
    ],
)
def test_ipv6_forms_carrying_a_non_public_ipv4_address_are_refused(address: str) -> None:
    assert not address_allowed(address)


def test_ipv6_forms_carrying_a_public_ipv4_address_are_judged_by_it() -> None:
    assert address_allowed("::ffff:93.184.216.34")
    assert address_allowed("2002:5db8:d822::1")  # 6to4 around 93.184.216.34


def test_clip_bytes_are_real_audio() -> None:
    assert clip_bytes(1.0)[:4] == b"RIFF"
