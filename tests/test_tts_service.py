"""The voice service end to end over HTTP, driving chatterbox's real code with tiny weights."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from testkit.tts.clips import HITS, clip_app
from testkit.tts.engine import CHATTERBOX_WARNINGS, tiny_engine, tiny_model_root
from testkit.tts.resolver import TableResolver
from testkit.waiting import wait_until
from voice_service.service import create_app
from voice_service.settings import ServiceSettings
from voice_service.text import split_text

pytestmark = [pytest.mark.integration, *CHATTERBOX_WARNINGS]

MODEL = "chatterbox-en-v1"


@pytest.fixture(scope="module")
def engine() -> Any:
    return tiny_engine()


@pytest.fixture
async def clip_server(aiohttp_server: Callable[..., Awaitable[Any]]) -> Any:
    return await aiohttp_server(clip_app())


@pytest.fixture
def clip_base(clip_server: Any) -> str:
    return f"http://clips.test:{clip_server.port}"


@pytest.fixture
def settings(tmp_path: Path) -> ServiceSettings:
    return ServiceSettings(
        _env_file=None,
        model_dir=tiny_model_root(),
        cache_dir=tmp_path,
        reference_allowed_hosts=["clips.test"],
        first_chunk_chars=40,
        max_chunk_chars=80,
    )


@pytest.fixture
async def make_client(
    aiohttp_client: Callable[..., Awaitable[TestClient]], engine: Any, settings: ServiceSettings
) -> Callable[..., Awaitable[TestClient]]:
    async def make(**overrides: Any) -> TestClient:
        app = create_app(
            settings.model_copy(update=overrides),
            engines={MODEL: engine},
            resolver=TableResolver({"clips.test": ["127.0.0.1"]}),
        )
        return await aiohttp_client(app)

    return make


@pytest.fixture
async def client(make_client: Callable[..., Awaitable[TestClient]]) -> TestClient:
    return await make_client()


async def test_speech_streams_pcm_sentence_by_sentence_in_order(
    client: TestClient, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    spoken: list[tuple[str, int]] = []
    original = engine.synthesize

    async def spy(text: str, **kwargs: Any) -> bytes:
        pcm = await original(text, **kwargs)
        spoken.append((text, len(pcm)))
        return pcm

    monkeypatch.setattr(engine, "synthesize", spy)
    text = "Hello there. How are you today? I am fine, thanks."
    resp = await client.post("/v1/speech", json={"text": text})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "audio/pcm"
    assert resp.headers["X-Sample-Rate"] == "24000"
    assert resp.headers["X-Voice"] == "default"
    first = await resp.content.readany()
    assert first
    # The first sentence arrived before the service finished the rest.
    assert len(spoken) < 3
    body = first + await resp.read()
    assert [t for t, _ in spoken] == split_text(text, first_chunk_chars=40, max_chunk_chars=80)
    assert len(body) == sum(n for _, n in spoken)
    assert len(body) % 2 == 0 and len(body) > 0


@pytest.mark.parametrize("text", ["", "   \n\t", "... !?"])
async def test_text_with_nothing_to_speak_is_refused_without_synthesis(
    client: TestClient, engine: Any, text: str
) -> None:
    before = engine.stats.utterances
    resp = await client.post("/v1/speech", json={"text": text})
    assert resp.status == 422
    assert (await resp.json())["error"]["code"] == "empty_text"
    assert engine.stats.utterances == before


async def test_long_text_is_split_into_bounded_chunks(
    client: TestClient, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts: list[str] = []

    async def record(text: str, **_: Any) -> bytes:
        texts.append(text)
        return b"\0\0" * 240

    monkeypatch.setattr(engine, "synthesize", record)
    text = "An unusually long sentence, with clause after clause, keeps going without a full stop " * 6
    resp = await client.post("/v1/speech", json={"text": text})
    assert resp.status == 200
    await resp.read()
    assert len(texts) > 3
    assert len(texts[0]) <= 40
    assert all(len(t) <= 80 for t in texts)
    assert " ".join(texts).split() == text.split()


async def test_disconnecting_stops_the_remaining_synthesis(client: TestClient, engine: Any) -> None:
    sentences = [f"Sentence number {n} is here." for n in range(8)]
    before = engine.stats.utterances
    resp = await client.post("/v1/speech", json={"text": " ".join(sentences)})
    assert resp.status == 200
    assert await resp.content.readany()
    resp.close()
    # Wait for the service to notice, then make sure nothing more is queued.
    await wait_until(lambda: engine.queue_depth == 0, 5, "the service to drop the queued sentences")
    await asyncio.sleep(0.3)
    assert engine.queue_depth == 0
    assert engine.stats.utterances - before < len(sentences) - 2


async def test_a_cloned_voice_is_computed_once_then_served_from_cache(
    make_client: Callable[..., Awaitable[TestClient]], engine: Any, clip_base: str
) -> None:
    client = await make_client()
    url = f"{clip_base}/pitch/170.wav"
    before = engine.stats.conditionals_computed
    sources = []
    for _ in range(2):
        resp = await client.post("/v1/speech", json={"text": "Hi.", "reference_audio_url": url})
        assert resp.status == 200
        assert resp.headers["X-Voice"] == "cloned"
        assert "X-Voice-Fallback" not in resp.headers
        assert await resp.read()
        sources.append(resp.headers["X-Voice-Cache"])
    assert sources == ["computed", "memory"]
    assert engine.stats.conditionals_computed - before == 1

    # A new process (fresh memory) with the same cache directory reads the file.
    other = await make_client()
    resp = await other.post("/v1/speech", json={"text": "Hi.", "reference_audio_url": url})
    assert resp.headers["X-Voice-Cache"] == "disk"
    await resp.read()
    assert engine.stats.conditionals_computed - before == 1
    health = await (await other.get("/healthz")).json()
    assert health["conditionals_cache"]["disk_hits"] == 1


async def test_concurrent_requests_for_one_clip_compute_once(
    client: TestClient, engine: Any, clip_base: str
) -> None:
    url = f"{clip_base}/pitch/230.wav"
    before = engine.stats.conditionals_computed
    body = {"text": "Hi.", "reference_audio_url": url}
    responses = await asyncio.gather(*(client.post("/v1/speech", json=body) for _ in range(3)))
    for resp in responses:
        assert resp.status == 200
        assert resp.headers["X-Voice"] == "cloned"
        await resp.read()
    assert sorted(r.headers["X-Voice-Cache"] for r in responses) == ["computed", "shared", "shared"]
    assert engine.stats.conditionals_computed - before == 1


@pytest.mark.parametrize(
    ("path", "reason"),
    [("/short.wav", "too_short"), ("/page.html", "not_audio"), ("/big", "too_large")],
)
async def test_a_bad_clip_falls_back_to_the_default_voice_with_a_reason(
    client: TestClient, clip_base: str, path: str, reason: str
) -> None:
    resp = await client.post("/v1/speech", json={"text": "Hi.", "reference_audio_url": clip_base + path})
    assert resp.status == 200
    assert resp.headers["X-Voice"] == "default"
    assert resp.headers["X-Voice-Fallback"] == reason
    assert len(await resp.read()) > 0


async def test_a_private_reference_url_falls_back_without_being_fetched(client: TestClient) -> None:
    resp = await client.post(
        "/v1/speech", json={"text": "Hi.", "reference_audio_url": "http://169.254.169.254/latest/meta-data"}
    )
    assert resp.status == 200
    assert resp.headers["X-Voice-Fallback"] == "address_not_allowed"
    assert await resp.read()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"text": "Hi.", "voice_model": "nope"}, 422, "unknown_voice_model"),
        ({"text": "Hi.", "voice_model": "chatterbox-turbo-v1"}, 404, "voice_model_not_loaded"),
        ({"text": "Hola.", "language": "es"}, 422, "language_not_supported"),
        ({"text": "Hi.", "voice": {"exaggeration": 9}}, 422, "invalid_request"),
        ({"words": "Hi."}, 422, "invalid_request"),
    ],
)
async def test_bad_requests_are_refused_with_a_code(
    client: TestClient, body: dict[str, Any], status: int, code: str
) -> None:
    resp = await client.post("/v1/speech", json=body)
    assert resp.status == status
    assert (await resp.json())["error"]["code"] == code


async def test_voices_and_healthz(client: TestClient) -> None:
    voices = (await (await client.get("/v1/voices")).json())["voices"]
    assert {v["name"]: v["loaded"] for v in voices} == {
        "chatterbox-en-v1": True,
        "chatterbox-multilingual-v1": False,
        "chatterbox-turbo-v1": False,
    }
    health = await (await client.get("/healthz")).json()
    assert health["status"] == "ok"
    assert health["queue_depth"] == 0
    assert health["models"][MODEL]["device"] == "cpu"


async def test_later_utterances_reuse_what_a_reference_url_gave(
    make_client: Callable[..., Awaitable[TestClient]], clip_server: Any, clip_base: str
) -> None:
    client = await make_client(reference_timeout_s=0.5)
    good = {"text": "Hi.", "reference_audio_url": f"{clip_base}/pitch/190.wav"}
    for _ in range(3):
        resp = await client.post("/v1/speech", json=good)
        assert resp.headers["X-Voice"] == "cloned"
        await resp.read()
    assert clip_server.app[HITS]["/pitch/190.wav"] == 1

    stalling = {"text": "Hi.", "reference_audio_url": f"{clip_base}/stall"}
    resp = await client.post("/v1/speech", json=stalling)
    assert resp.headers["X-Voice-Fallback"] == "timeout"
    await resp.read()
    started = asyncio.get_running_loop().time()
    resp = await client.post("/v1/speech", json=stalling)
    assert resp.headers["X-Voice-Fallback"] == "timeout"
    assert asyncio.get_running_loop().time() - started < 0.5 + 2.0  # no second wait for the URL
    await resp.read()
    assert clip_server.app[HITS]["/stall"] == 1
