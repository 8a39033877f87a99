"""Provider failures: a spoken apology and the conversation goes on; a provider that keeps
failing ends the session with a reported reason. A refused reference clip is reported."""

from __future__ import annotations

import asyncio

import pytest
from livekit.agents import utils
from livekit.plugins import openai

from agent.conversation import APOLOGY, SessionModels, start_conversation
from agent.providers import load_local_models
from agent.settings import Settings
from contract.events import SessionEvent
from contract.session_config import DispatchConfig, SessionConfig
from testkit.audio.audio_io import PushAudioInput, RecordingAudioOutput
from testkit.standins.fake_tts import FakeTTS
from testkit.standins.openai_standin import OpenAIStandIn, TextReply
from testkit.waiting import wait_until

pytestmark = pytest.mark.voice


async def test_llm_errors_apologise_then_end_the_session(aiohttp_server):
    oa = OpenAIStandIn(script=lambda body: TextReply("Happy to help."), fail_next=1)
    oa_server = await aiohttp_server(oa.app())
    settings = Settings(
        _env_file=None,
        openai_api_key="k",
        openai_base_url=str(oa_server.make_url("/v1")),
        provider_max_retry=0,
        max_provider_errors=2,
    )
    config = SessionConfig(
        session_id="sess_res",
        character="helper",
        character_name="Helper",
        language="en-US",
        system_prompt="You help.",
        greeting="",
        voice_model="chatterbox-en-v1",
    )
    local = load_local_models()
    tts = FakeTTS()
    tts.voice_fallback = "reference audio refused: private address"  # as the Chatterbox plugin says
    events: list[SessionEvent] = []
    speaker = RecordingAudioOutput(speed=10.0)
    async with utils.http_context.open():
        conv = await start_conversation(
            config=config,
            dispatch=DispatchConfig(session_id="sess_res"),
            settings=settings,
            models=SessionModels(
                vad=local.vad,
                turn_detector=local.turn_detector,
                stt=None,
                llm=openai.LLM(model="m", api_key="k", base_url=settings.openai_base_url),
                tts=tts,
            ),
            report=events.append,
            audio_input=PushAudioInput(),
            audio_output=speaker,
        )
        try:
            conv.session.generate_reply(user_input="Hello?")
            await wait_until(lambda: APOLOGY in " ".join(tts.texts), 15, "the apology")
            conv.session.generate_reply(user_input="Hello again?")
            await wait_until(lambda: "Happy to help." in tts.texts, 15, "the conversation to go on")

            oa.fail_next = 100
            for _ in range(3):
                if conv.closed.is_set():
                    break
                conv.session.generate_reply(user_input="Are you there?")
                await asyncio.sleep(0.5)
            await asyncio.wait_for(conv.wait_closed(), 15)
        finally:
            await conv.aclose()

    errors = [e for e in events if e.type == "error"]
    assert any(e.source == "llm" and not e.recoverable for e in errors)
    assert any(e.source == "voice" and "private address" in e.message for e in errors)
    ended = [e for e in events if e.type == "session_ended"]
    assert len(ended) == 1 and ended[0].reason == "llm kept failing"
