"""`python -m agent test --audio`: the shipped scenarios spoken through the whole voice pipeline.

Each user turn is espeak-ng speech pushed into the session's microphone in real time:
real Silero VAD and the local end-of-turn model find the turn, the real Deepgram plugin
streams it to the `/v1/listen` stand-in, the real OpenAI plugin asks the scripted
chat-completions stand-in, and the replies are synthesised by a TTS (the fake tone
engine here; Chatterbox in a deployment) and played out.
"""

from __future__ import annotations

import io
import shutil

import pytest

from agent.conversation import SessionModels
from agent.conversation_tests import EXIT_PASSED, run_tests
from agent.providers import LocalModels, build_llm, build_stt
from agent.scenarios import load_scenario_file
from agent.settings import Settings
from contract import DEFAULT_CHARACTERS_DIR
from contract.session_config import SessionConfig
from testkit.character_script import character_script
from testkit.standins.deepgram_standin import DeepgramStandIn
from testkit.standins.fake_tts import FakeTTS
from testkit.standins.openai_standin import OpenAIStandIn

pytestmark = [
    pytest.mark.voice,
    pytest.mark.skipif(
        shutil.which("espeak-ng") is None, reason="needs espeak-ng (apt-get install espeak-ng)"
    ),
]

SLUGS = ["intake", "receptionist", "support-bot"]


async def test_the_shipped_scenarios_pass_spoken(aiohttp_server):
    spoken = [
        turn.user
        for slug in SLUGS
        for scenario in load_scenario_file(DEFAULT_CHARACTERS_DIR / f"{slug}.tests.yaml").scenarios
        for turn in scenario.turns
    ]
    # the stand-in hears each utterance as the next of these; a sentence pause must not end one
    deepgram = DeepgramStandIn(transcripts=spoken, silence_to_end=0.8)
    llm_standin = OpenAIStandIn(script=character_script, first_token_delay=0.0)
    dg_server = await aiohttp_server(deepgram.app())
    llm_server = await aiohttp_server(llm_standin.app())
    settings = Settings(
        _env_file=None,
        openai_api_key="test-key",
        openai_base_url=str(llm_server.make_url("/v1")),
        deepgram_api_key="dg-test-key",
        deepgram_base_url=str(dg_server.make_url("/v1/listen")),
        provider_max_retry=0,
    )
    voices: list[FakeTTS] = []

    def build_models(config: SessionConfig, settings: Settings, local: LocalModels) -> SessionModels:
        assert config.mode == "voice"
        voices.append(FakeTTS(first_byte_delay=0.05))
        return SessionModels(
            vad=local.vad,
            turn_detector=local.turn_detector,
            stt=build_stt(config, settings),
            llm=build_llm(config, settings),
            tts=voices[-1],
        )

    out = io.StringIO()
    code = await run_tests(settings, slugs=SLUGS, audio=True, build_models=build_models, out=out)
    report = out.getvalue()
    assert code == EXIT_PASSED, report
    assert "all 4 scenarios passed" in report
    assert "intake · fills-the-form (audio)" in report
    # every turn was heard, by speech recognition, as one utterance
    assert deepgram.finals == spoken
    assert "  heard  I'm actually customer cust-99. What's the status of order B777?" in report
    assert "✓ call ended: 'every required field is filled'" in report
    # and every reply was spoken: greetings, answers, the goodbye
    said = " ".join(text for tts in voices for text in tts.texts)
    assert "I'm Riley" in said
    assert "los sábados estamos cerrados" in said
    assert "Goodbye!" in said
