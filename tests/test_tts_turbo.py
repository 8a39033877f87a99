"""The turbo voice model through the service: ChatterboxTurboTTS's real code, tiny weights."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from testkit.tts.clips import clip_app
from testkit.tts.engine import CHATTERBOX_WARNINGS, tiny_model_root, tiny_turbo_engine
from testkit.tts.resolver import TableResolver
from voice_service.service import create_app
from voice_service.settings import ServiceSettings

pytestmark = [pytest.mark.integration, *CHATTERBOX_WARNINGS]

MODEL = "chatterbox-turbo-v1"


@pytest.fixture(scope="module")
def engine() -> Any:
    return tiny_turbo_engine()


@pytest.fixture
async def clip_base(aiohttp_server: Callable[..., Awaitable[Any]]) -> str:
    return f"http://clips.test:{(await aiohttp_server(clip_app())).port}"


@pytest.fixture
async def client(
    aiohttp_client: Callable[..., Awaitable[TestClient]], engine: Any, tmp_path: Path
) -> TestClient:
    settings = ServiceSettings(
        _env_file=None,
        model_dir=tiny_model_root(),
        models=[MODEL],
        cache_dir=tmp_path,
        reference_allowed_hosts=["clips.test"],
    )
    app = create_app(settings, engines={MODEL: engine}, resolver=TableResolver({"clips.test": ["127.0.0.1"]}))
    return await aiohttp_client(app)


async def test_turbo_speaks_in_its_default_voice(client: TestClient) -> None:
    resp = await client.post("/v1/speech", json={"text": "Hello there. Bye now.", "voice_model": MODEL})
    assert resp.status == 200
    assert resp.headers["X-Voice"] == "default"
    body = await resp.read()
    assert len(body) > 0 and len(body) % 2 == 0


async def test_turbo_clones_from_a_clip_longer_than_five_seconds(client: TestClient, clip_base: str) -> None:
    body = {"text": "Hi.", "voice_model": MODEL, "reference_audio_url": f"{clip_base}/seconds/6.wav"}
    resp = await client.post("/v1/speech", json=body)
    assert resp.status == 200
    assert resp.headers["X-Voice"] == "cloned"
    assert resp.headers["X-Voice-Cache"] == "computed"
    assert await resp.read()


async def test_turbo_refuses_a_four_second_clip_that_the_english_model_takes(
    client: TestClient, clip_base: str
) -> None:
    body = {"text": "Hi.", "voice_model": MODEL, "reference_audio_url": f"{clip_base}/seconds/4.wav"}
    resp = await client.post("/v1/speech", json=body)
    assert resp.status == 200
    assert resp.headers["X-Voice"] == "default"
    assert resp.headers["X-Voice-Fallback"] == "too_short"
    assert await resp.read()
