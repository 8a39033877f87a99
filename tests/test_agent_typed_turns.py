"""Typed turns in-process, with no room: a text-only session, and a typed turn in a voice one.

The real token server starts the session (so the config is the one the room carries);
the typed turns go through `take_typed_turn`, the callback RoomIO calls for every text
stream on `lk.chat`; the real OpenAI plugin talks to the chat-completions stand-in and
the real MCP server answers its tool call. The reports go through the real ingest
client to the token server, and are read back from `GET /v1/sessions/{id}/logs`.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from livekit.agents import utils
from livekit.agents.voice.room_io import TextInputEvent
from livekit.plugins import openai

from agent.conversation import Conversation, SessionModels, greet, room_options, start_conversation
from agent.ingest import IngestClient
from agent.providers import EMBEDDED_VOICE_ERROR_ENV, LocalModels, ProviderUnavailable, load_local_models
from agent.settings import Settings
from agent.typed_turns import MAX_TYPED_CHARS, take_typed_turn
from agent.worker import _build_models
from contract.session_config import DispatchConfig, SessionConfig
from testkit.audio.audio_io import PushAudioInput, RecordingAudioOutput
from testkit.livekit_server import API_KEY, API_SECRET
from testkit.standins.fake_tts import FakeTTS
from testkit.standins.mcp_server import OrdersMCP, serve_mcp
from testkit.standins.openai_standin import OpenAIStandIn
from testkit.support_call import support_character, support_script
from testkit.waiting import wait_until

pytestmark = pytest.mark.voice

KEY = {"Authorization": "Bearer server-key-1"}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: this test is about the worker, not the store."""
    return f"sqlite+aiosqlite:///{tmp_path}/oshara.db"


async def start_session(make_client, livekit, tmp_path: Path, mcp_url: str, mode: str):
    """The real token server starts a session in `mode`; returns its client, room config and dispatch."""
    characters = tmp_path / "characters"
    characters.mkdir(exist_ok=True)
    (characters / "support.yaml").write_text(support_character(mcp_url))
    client = await make_client(characters_dir=characters)
    resp = await client.post(
        "/v1/sessions",
        json={"agent": "support", "mode": mode, "metadata": {"user_id": "u-42", "user_name": "Ada"}},
        headers=KEY,  # from the site's server: the metadata is verified, so it binds the tool argument
    )
    assert resp.status == 201, await resp.text()
    room_name = (await resp.json())["room_name"]
    room = await livekit.room(room_name)
    assert room is not None
    (dispatch,) = await livekit.dispatches(room_name)
    return client, SessionConfig.from_json(room.metadata), DispatchConfig.from_json(dispatch.metadata)


async def logged(client, session_id: str) -> list[dict[str, Any]]:
    resp = await client.get(f"/v1/sessions/{session_id}/logs", params={"limit": "500"}, headers=KEY)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["events"]


async def typed(conv: Conversation, text: str) -> None:
    """The user types `text`: what RoomIO does with a text stream on `lk.chat`."""
    await take_typed_turn(conv.session, TextInputEvent(text=text))


def _settings(client, oa_server, **overrides: Any) -> Settings:
    return Settings(
        _env_file=None,
        token_server_url=str(client.make_url("")),
        openai_api_key="oa-test-key",
        openai_base_url=str(oa_server.make_url("/v1")),
        **overrides,
    )


def _llm(settings: Settings) -> openai.LLM:
    return openai.LLM(model="gpt-4o-mini", api_key="oa-test-key", base_url=settings.openai_base_url)


async def test_a_text_only_session_answers_typed_turns_in_text(
    aiohttp_server, monkeypatch, make_client, livekit, tmp_path, caplog
):
    monkeypatch.setenv("ORDERS_MCP_TOKEN", "orders-secret-from-env")
    oa = OpenAIStandIn(script=support_script)
    oa_server = await aiohttp_server(oa.app())
    orders = OrdersMCP()

    async with utils.http_context.open(), serve_mcp(orders.build()) as mcp_url:
        client, config, dispatch = await start_session(make_client, livekit, tmp_path, mcp_url, "text")
        assert config.mode == "text"
        # no Deepgram key, no voice service: a text session needs neither
        settings = _settings(client, oa_server)
        # the models the worker builds for it: the LLM and nothing else
        built = _build_models(config, settings, LocalModels(vad=None, turn_detector=None))  # type: ignore[arg-type]
        assert (built.stt, built.tts, built.vad, built.turn_detector) == (None, None, None, None)
        await built.llm.aclose()

        ingest = IngestClient(
            base_url=settings.token_server_url,
            api_key=API_KEY,
            api_secret=API_SECRET,
            session_id=config.session_id,
        )
        replies: list[str] = []
        conv = await start_conversation(
            config=config,
            dispatch=dispatch,
            settings=settings,
            models=SessionModels(vad=None, turn_detector=None, stt=None, llm=_llm(settings), tts=None),
            report=ingest.emit,
        )
        conv.session.on(
            "conversation_item_added",
            lambda ev: ev.item.role == "assistant" and replies.append(ev.item.text_content or ""),
        )
        try:
            assert conv.session.stt is None and conv.session.tts is None and conv.session.vad is None
            greet(conv, config)
            await wait_until(lambda: any("Sam from support" in r for r in replies), 10, "the greeting")

            await typed(conv, "   Where is my order A123?  ")
            await wait_until(
                lambda: any("shipped yesterday" in r for r in replies), 30, "the typed turn's answer"
            )
            await wait_until(lambda: conv.session.agent_state == "listening", 10, "the agent to wait")

            # an over-long turn is cut to the limit, with a warning that holds no text
            caplog.set_level(logging.WARNING, logger="oshara.agent.typed_turns")
            asked = len(oa.requests)
            await typed(conv, "x" * (MAX_TYPED_CHARS + 500))
            await wait_until(lambda: len(oa.requests) > asked, 10, "the long turn to reach the LLM")
            await wait_until(lambda: conv.session.agent_state == "listening", 10, "the agent to wait")
            assert oa.requests[asked]["messages"][-1]["content"] == "x" * MAX_TYPED_CHARS
            (warning,) = [r for r in caplog.records if r.name == "oshara.agent.typed_turns"]
            assert "x" * 20 not in warning.getMessage() and warning.chars == MAX_TYPED_CHARS + 500  # type: ignore[attr-defined]
            await typed(conv, "  ")  # nothing typed: no turn
            assert len(oa.requests) == asked + 1

            await typed(conv, "Thanks, that's all. Goodbye.")
            await asyncio.wait_for(conv.wait_closed(), 30)
        finally:
            await conv.aclose()
            await ingest.aclose(deadline=5)

    # the LLM was told the conversation is typed, and never saw the typed-turn marker
    system = oa.requests[0]["messages"][0]["content"]
    assert "typed, not spoken" in system
    assert all("extra_content" not in m for r in oa.requests for m in r["messages"])
    assert orders.calls and orders.calls[0]["customer_id"] == "u-42"

    events = await logged(client, config.session_id)
    lines = [(e["role"], e["source"], e["text"]) for e in events if e["type"] == "transcript"]
    assert ("user", "text", "Where is my order A123?") in lines
    assert ("user", "text", "x" * MAX_TYPED_CHARS) in lines
    assert any(
        role == "agent" and source == "text" and "Sam from support" in text for role, source, text in lines
    )
    assert any(role == "agent" and "shipped yesterday" in text for role, _, text in lines)
    assert {source for _, source, _ in lines} == {"text"}
    ended = next(e for e in events if e["type"] == "session_ended")
    assert ended["reason"] == "the user said goodbye"
    assert ended["usage"]["tts_characters"] == 0 and ended["usage"]["audio_seconds_in"] == 0
    assert not [e for e in events if e["type"] == "error"]


async def test_a_typed_turn_in_a_voice_session_is_answered_aloud_and_logged_as_typed(
    aiohttp_server, monkeypatch, make_client, livekit, tmp_path
):
    monkeypatch.setenv("ORDERS_MCP_TOKEN", "orders-secret-from-env")
    oa = OpenAIStandIn(script=support_script)
    oa_server = await aiohttp_server(oa.app())
    orders = OrdersMCP()
    local = load_local_models()

    async with utils.http_context.open(), serve_mcp(orders.build()) as mcp_url:
        client, config, dispatch = await start_session(make_client, livekit, tmp_path, mcp_url, "voice")
        settings = _settings(client, oa_server)
        ingest = IngestClient(
            base_url=settings.token_server_url,
            api_key=API_KEY,
            api_secret=API_SECRET,
            session_id=config.session_id,
        )
        tts = FakeTTS(first_byte_delay=0.05)
        speaker = RecordingAudioOutput(sample_rate=24_000, speed=4.0)
        conv = await start_conversation(
            config=config,
            dispatch=dispatch,
            settings=settings,
            models=SessionModels(
                vad=local.vad, turn_detector=local.turn_detector, stt=None, llm=_llm(settings), tts=tts
            ),
            report=ingest.emit,
            audio_input=PushAudioInput(),  # a microphone that says nothing: the user types
            audio_output=speaker,
        )
        try:
            greet(conv, config)
            await wait_until(lambda: speaker.segments, 15, "the greeting to play")
            await typed(conv, "Where is my order A123?")
            await wait_until(
                lambda: any("shipped yesterday" in t for t in tts.texts), 30, "the spoken answer"
            )
            await wait_until(lambda: conv.session.agent_state == "listening", 15, "the agent to listen")
        finally:
            await conv.aclose()
            await ingest.aclose(deadline=5)

    events = await logged(client, config.session_id)
    lines = [(e["role"], e["source"], e["text"]) for e in events if e["type"] == "transcript"]
    assert ("user", "text", "Where is my order A123?") in lines
    # the agent spoke: its lines are voice, the answer to the typed turn included
    assert [source for role, source, _ in lines if role == "agent"] == ["voice"] * len(
        [r for r in lines if r[0] == "agent"]
    )
    assert any(role == "agent" and "shipped yesterday" in text for role, _, text in lines)


def test_a_text_only_session_needs_no_speech_recognition_and_no_voice_service(monkeypatch):
    """The worker builds the LLM alone: it never looks for a Deepgram key or a voice service."""
    monkeypatch.setenv(EMBEDDED_VOICE_ERROR_ENV, "the embedded voice service cannot start: no weights")
    from contract import Character

    character = Character.model_validate({"slug": "c", "name": "C", "system_prompt": "hi"})
    fields: dict[str, Any] = {
        "language": None,
        "system_prompt": "hi",
        "greeting": "",
        "voice_model": "chatterbox-en-v1",
        "reference_audio_url": None,
        "metadata": {},
    }
    settings = Settings(_env_file=None, openai_api_key="k")
    local = LocalModels(vad=None, turn_detector=None)  # type: ignore[arg-type]
    text = SessionConfig.for_character("ses_t", character, mode="text", **fields)
    models = _build_models(text, settings, local)
    assert models.llm is not None and (models.stt, models.tts, models.vad) == (None, None, None)
    voice = SessionConfig.for_character("ses_v", character, mode="voice", **fields)
    with pytest.raises(ProviderUnavailable) as raised:
        _build_models(voice, settings, local)
    assert any("DEEPGRAM_API_KEY" in m for m in raised.value.missing)
    assert any("CHATTERBOX_URL" in m for m in raised.value.missing)
    # and the room: typed turns on lk.chat in both, audio in neither direction for text
    options = room_options(text)
    assert options.get_audio_input_options() is None and options.get_audio_output_options() is None
    assert options.get_text_input_options() is not None and options.get_text_output_options() is not None
    voiced = room_options(voice)
    assert voiced.get_audio_input_options() is not None and voiced.get_text_input_options() is not None
    # the room's audio comes at the rate VAD, end-of-turn model and STT take: resampled once
    assert voiced.get_audio_input_options().sample_rate == 16_000  # type: ignore[union-attr]
    assert voiced.get_text_input_options().text_input_cb is take_typed_turn  # type: ignore[union-attr]
