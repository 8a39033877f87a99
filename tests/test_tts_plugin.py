"""The livekit TTS plugin against the real voice service (tiny chatterbox weights)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from livekit.agents import APIConnectionError, APIConnectOptions, APIStatusError, APITimeoutError
from livekit.agents.metrics import TTSMetrics

from agent.tts import TTS
from testkit.tts.clips import clip_app
from testkit.tts.engine import CHATTERBOX_WARNINGS, tiny_engine, tiny_model_root
from testkit.tts.resolver import TableResolver
from voice_service.service import create_app
from voice_service.settings import ServiceSettings

pytestmark = [pytest.mark.integration, *CHATTERBOX_WARNINGS]

NO_RETRY = APIConnectOptions(max_retry=0, timeout=5.0)


@pytest.fixture(scope="module")
def engine() -> Any:
    return tiny_engine()


@pytest.fixture
async def service_url(aiohttp_server: Callable[..., Awaitable[Any]], engine: Any, tmp_path: Path) -> str:
    settings = ServiceSettings(
        _env_file=None,
        model_dir=tiny_model_root(),
        cache_dir=tmp_path,
        reference_allowed_hosts=["clips.test"],
    )
    app = create_app(
        settings, engines={"chatterbox-en-v1": engine}, resolver=TableResolver({"clips.test": ["127.0.0.1"]})
    )
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_synthesize_yields_24khz_frames_and_reports_ttfb(
    service_url: str, http: aiohttp.ClientSession
) -> None:
    tts = TTS(base_url=service_url, http_session=http)
    metrics: list[TTSMetrics] = []
    tts.on("metrics_collected", metrics.append)
    frames = []
    async with tts.synthesize("Hello there. How are you?", conn_options=NO_RETRY) as stream:
        async for event in stream:
            frames.append(event.frame)
    assert frames
    assert {f.sample_rate for f in frames} == {24_000}
    assert {f.num_channels for f in frames} == {1}
    assert sum(f.samples_per_channel for f in frames) > 0
    await asyncio.sleep(0)
    assert metrics and metrics[-1].ttfb > 0
    assert tts.voice_fallback is None
    await tts.aclose()


async def test_a_refused_clip_still_speaks_and_reports_the_reason(
    service_url: str, http: aiohttp.ClientSession, aiohttp_server: Callable[..., Awaitable[Any]]
) -> None:
    clips = await aiohttp_server(clip_app())
    tts = TTS(
        base_url=service_url,
        http_session=http,
        reference_audio_url=f"http://clips.test:{clips.port}/short.wav",
    )
    frames = [e.frame async for e in tts.synthesize("Hi.", conn_options=NO_RETRY)]
    assert frames
    assert tts.voice_fallback == "too_short"


async def test_a_refused_request_is_a_non_retryable_status_error(
    service_url: str, http: aiohttp.ClientSession
) -> None:
    tts = TTS(base_url=service_url, http_session=http)
    with pytest.raises(APIStatusError) as info:
        async with tts.synthesize("   ", conn_options=NO_RETRY) as stream:
            async for _ in stream:
                pass
    assert info.value.status_code == 422
    assert not info.value.retryable


async def test_an_unreachable_service_is_a_connection_error(http: aiohttp.ClientSession) -> None:
    with socket_bound_and_closed() as port:
        pass
    tts = TTS(base_url=f"http://127.0.0.1:{port}", http_session=http)
    with pytest.raises(APIConnectionError):
        async with tts.synthesize("Hi.", conn_options=NO_RETRY) as stream:
            async for _ in stream:
                pass


async def test_a_silent_service_is_a_timeout(
    http: aiohttp.ClientSession, aiohttp_server: Callable[..., Awaitable[Any]]
) -> None:
    async def stall(_: web.Request) -> web.Response:
        await asyncio.sleep(3600)
        return web.Response()

    app = web.Application()
    app.router.add_post("/v1/speech", stall)
    server = await aiohttp_server(app)
    tts = TTS(base_url=str(server.make_url("")), http_session=http, request_timeout=0.3)
    with pytest.raises(APITimeoutError):
        async with tts.synthesize("Hi.", conn_options=NO_RETRY) as stream:
            async for _ in stream:
                pass


async def test_closing_the_stream_stops_synthesis_on_the_service(
    service_url: str, http: aiohttp.ClientSession, engine: Any
) -> None:
    tts = TTS(base_url=service_url, http_session=http)
    sentences = [f"This is sentence {n}." for n in range(8)]
    before = engine.stats.utterances
    stream = tts.synthesize(" ".join(sentences), conn_options=NO_RETRY)
    async for _ in stream:
        break  # the first frame arrived: the user interrupts
    await stream.aclose()
    for _ in range(100):
        await asyncio.sleep(0.05)
        if engine.queue_depth == 0:
            break
    await asyncio.sleep(0.3)
    assert engine.queue_depth == 0
    assert engine.stats.utterances - before < len(sentences) - 2


def test_the_package_exports_what_the_worker_uses() -> None:
    import agent.tts

    assert set(agent.tts.__all__) == {
        "TTS",
        "ChunkedStream",
        "EmbeddedServiceError",
        "EmbeddedVoiceService",
        "voice_service_url",
    }
    from livekit.agents import Plugin

    assert any(type(p).__name__ == "ChatterboxPlugin" for p in Plugin.registered_plugins)


class socket_bound_and_closed:
    """A loopback port that was free a moment ago and has nothing listening."""

    def __enter__(self) -> int:
        import socket

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        return self._sock.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self._sock.close()
