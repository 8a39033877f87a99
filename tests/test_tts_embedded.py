"""The embedded voice service: a child `python -m voice_service serve` the worker starts and stops."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from livekit.agents import APIConnectOptions

from agent.tts import TTS, EmbeddedServiceError, EmbeddedVoiceService, voice_service_url
from testkit.tts.engine import CHATTERBOX_WARNINGS, TINY_MAX_NEW_TOKENS, tiny_model_root

pytestmark = [pytest.mark.integration, *CHATTERBOX_WARNINGS]


async def test_embedded_service_starts_serves_the_plugin_and_stops(tmp_path: Path) -> None:
    env = {
        "CHATTERBOX_MODEL_DIR": str(tiny_model_root()),
        "CHATTERBOX_MAX_NEW_TOKENS": str(TINY_MAX_NEW_TOKENS),
        "CHATTERBOX_CACHE_DIR": str(tmp_path),
        "CHATTERBOX_DEVICE": "cpu",
    }
    url, service = await voice_service_url(None, env=env)
    assert service is not None
    try:
        assert url.startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession() as http:
            health = await (await http.get(f"{url}/healthz")).json()
            assert list(health["models"]) == ["chatterbox-en-v1"]
            tts = TTS(base_url=url, http_session=http)
            frames = [
                e.frame async for e in tts.synthesize("Hi.", conn_options=APIConnectOptions(max_retry=0))
            ]
            assert frames and frames[0].sample_rate == 24_000
        process = service._process
        assert process is not None and process.returncode is None
    finally:
        await service.aclose()
    assert process.returncode is not None
    with pytest.raises(EmbeddedServiceError):
        _ = service.url


async def test_10000_lines_of_child_output_change_nothing() -> None:
    # About 700 KB, over three times what the pipe and the parent's stream buffer hold.
    # The outer limit is there because a child blocked on a full pipe also blocks
    # aclose(): on Python 3.11 Process.wait() returns only once stdout is closed.
    service = EmbeddedVoiceService(module="testkit.standins.chatty_service", startup_timeout=30)
    async with (
        asyncio.timeout(60),
        service,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http,
    ):
        url = service.url
        resp = await http.post(f"{url}/print", params={"lines": "10000"})
        assert (resp.status, await resp.json()) == (200, {"printed": 10_000})
        resp = await http.post(f"{url}/print", params={"lines": "1"})
        assert resp.status == 200
        assert (await http.get(f"{url}/healthz")).status == 200
        assert service.url == url
        process = service._process
        assert process is not None and process.returncode is None
    assert process.returncode is not None


async def test_a_configured_url_starts_nothing() -> None:
    assert await voice_service_url("http://tts.internal:8091/") == ("http://tts.internal:8091", None)


async def test_a_missing_model_is_a_clear_startup_error(tmp_path: Path) -> None:
    service = EmbeddedVoiceService(env={"CHATTERBOX_MODEL_DIR": str(tmp_path)}, startup_timeout=120)
    with pytest.raises(EmbeddedServiceError, match="exited"):
        await service.start()
