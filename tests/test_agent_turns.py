"""The session's turn settings in the agent: a VAD of its own, and the `turn:` block's values
in the running session's turn handling.

How well the settings take turns is measured in `python -m bench --section turn_taking`,
never here: these tests check only where each value goes.
"""

from __future__ import annotations

import pytest
from livekit.agents import utils
from livekit.plugins import openai

from agent.conversation import SessionModels, start_conversation
from agent.providers import load_local_models, session_vad
from agent.settings import Settings
from agent.worker import _build_models
from contract import Character
from contract.model import TurnConfig
from contract.session_config import DispatchConfig, SessionConfig
from testkit.audio.audio_io import PushAudioInput, RecordingAudioOutput
from testkit.standins.fake_tts import FakeTTS

pytestmark = pytest.mark.voice

TURN = {
    "min_silence_seconds": 0.25,
    "min_delay_seconds": 0.2,
    "max_delay_seconds": 1.5,
    "interrupt_min_speech_seconds": 0.4,
    "interrupt_min_words": 3,
}


def session_config(character: Character) -> SessionConfig:
    return SessionConfig.for_character(
        "ses_turn",
        character,
        language="en-US",
        system_prompt="hi",
        greeting="",
        voice_model="chatterbox-en-v1",
        reference_audio_url=None,
        metadata={},
    )


def test_each_session_gets_a_vad_of_its_own_around_the_shared_weights():
    loaded = load_local_models().vad
    before = loaded.min_silence_duration
    mine = session_vad(loaded, TurnConfig(min_silence_seconds=0.25))
    assert mine is not loaded
    assert mine.min_silence_duration == 0.25
    assert loaded.min_silence_duration == before  # the process's VAD, shared by its jobs, is untouched
    assert mine._onnx_session is loaded._onnx_session  # type: ignore[attr-defined]  # no second copy of the model
    # a session asking for what the loaded VAD already has uses it as it is
    assert session_vad(loaded, TurnConfig(min_silence_seconds=before)) is loaded


async def test_the_turn_settings_reach_the_running_session():
    character = Character.model_validate({"slug": "c", "name": "C", "system_prompt": "hi", "turn": TURN})
    config = session_config(character)
    settings = Settings(
        _env_file=None,
        deepgram_api_key="dg-test",
        openai_api_key="oa-test",
        openai_base_url="http://127.0.0.1:9/v1",
        chatterbox_url="http://127.0.0.1:9",
    )
    local = load_local_models()
    built = _build_models(config, settings, local)  # what the worker builds for the job
    assert built.vad is not None and built.vad.min_silence_duration == 0.25
    for model in (built.stt, built.llm, built.tts):
        if model is not None:
            await model.aclose()

    async with utils.http_context.open():
        conv = await start_conversation(
            config=config,
            dispatch=DispatchConfig.for_session(config.session_id, character, {}),
            settings=settings,
            models=SessionModels(
                vad=built.vad,
                turn_detector=local.turn_detector,
                stt=None,
                llm=openai.LLM(model="gpt-4o-mini", api_key="oa-test", base_url="http://127.0.0.1:9/v1"),
                tts=FakeTTS(),
            ),
            report=lambda event: None,
            audio_input=PushAudioInput(),
            audio_output=RecordingAudioOutput(),
        )
        try:
            session = conv.session
            assert session.vad is built.vad
            assert session.options.endpointing["min_delay"] == 0.2
            assert session.options.endpointing["max_delay"] == 1.5
            assert session.options.interruption["mode"] == "vad"
            assert session.options.interruption["min_duration"] == 0.4
            assert session.options.interruption["min_words"] == 3
            assert session.options.turn_handling["turn_detection"] is local.turn_detector
        finally:
            await conv.aclose()
