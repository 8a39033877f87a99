"""One session's conversation: tools, instructions, the voice pipeline and its reporting.

`start_conversation()` is what the worker's entrypoint, the console and the tests
all run. It takes the session's configuration and already-built models, so a test
can hand it models pointed at local stand-ins and its own audio input and output
instead of a room.

Every session takes typed turns on `lk.chat` (see `agent.typed_turns`). A text-only
session (`config.mode == "text"`) has no audio at all: no VAD, STT or TTS, no audio
track in or out; its replies reach the room as text on `lk.transcription`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from livekit import rtc
from livekit.agents import NOT_GIVEN, APIConnectOptions, TurnHandlingOptions, llm, stt, tts, vad
from livekit.agents.voice import Agent, AgentSession
from livekit.agents.voice.agent_session import SessionConnectOptions
from livekit.agents.voice.events import CloseEvent, ErrorEvent
from livekit.agents.voice.io import AudioInput, AudioOutput
from livekit.agents.voice.room_io import AudioInputOptions, RoomOptions, TextInputOptions
from livekit.agents.voice.speech_handle import SpeechHandle

from contract.events import Error, SessionStarted
from contract.session_config import DispatchConfig, SessionConfig

from .ending import EndCall
from .forms import FORM_TOPIC, FormSession
from .instructions import build_instructions
from .mcp_tools import MCPTools, connect_mcp_tools
from .reporting import Report, SessionReporter, error_source
from .settings import Settings
from .typed_turns import take_typed_turn

logger = logging.getLogger("oshara.agent.conversation")

AGENT_VERSION = "oshara-agent/0.1.0"
APOLOGY = "Sorry, I had a problem on my side. Could you say that again?"
TEXT_MODE_NOTE = (
    "This conversation is typed, not spoken: the user writes to you and reads your replies "
    "as text in a chat window."
)
_APOLOGY_INTERVAL = 5.0


@dataclass
class SessionModels:
    """The models one session runs with; a text-only session has only the LLM."""

    vad: vad.VAD | None
    turn_detector: Any
    stt: stt.STT | None
    llm: llm.LLM
    tts: tts.TTS | None


@dataclass
class Conversation:
    """A running session and what it is made of."""

    session: AgentSession
    reporter: SessionReporter
    mcp: MCPTools
    form: FormSession | None
    end_call: EndCall
    models: SessionModels | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_event: CloseEvent | None = None

    async def wait_closed(self) -> CloseEvent | None:
        """Wait until the session has closed (end_call, errors, the user leaving)."""
        await self.closed.wait()
        return self.close_event

    async def aclose(self) -> None:
        """Close the session, the MCP connections and the session's own STT, LLM and TTS."""
        await self.session.aclose()
        await self.mcp.aclose()
        if self.models is not None:
            for model in (self.models.stt, self.models.llm, self.models.tts):
                if model is not None:
                    try:
                        await model.aclose()
                    except Exception:
                        logger.warning("closing a model failed", exc_info=True)


def _room_publisher(room: rtc.Room | None) -> Callable[[dict[str, Any]], Awaitable[None]] | None:
    if room is None:
        return None

    async def publish(payload: dict[str, Any]) -> None:
        async with asyncio.timeout(3):
            await room.local_participant.send_text(json.dumps(payload, default=str), topic=FORM_TOPIC)

    return publish


async def start_conversation(
    *,
    config: SessionConfig,
    dispatch: DispatchConfig,
    settings: Settings,
    models: SessionModels,
    report: Report,
    room: rtc.Room | None = None,
    audio_input: AudioInput | None = None,
    audio_output: AudioOutput | None = None,
    environ: Mapping[str, str] | None = None,
    notes: list[str] | None = None,
) -> Conversation:
    """Connect the session's tools, start its voice pipeline and report the start.

    The greeting is not spoken here: call `greet()` when the user is there.
    """
    text_only = config.mode == "text"
    reporter = SessionReporter(report, language=config.language, mode=config.mode)
    form = FormSession(config.form, report=report, publish=_room_publisher(room)) if config.form else None
    end_call = EndCall(reporter=reporter, report=report)
    builtin = {"end_call"} | ({"record_answer"} if form else set())
    mcp = await connect_mcp_tools(
        config,
        dispatch,
        report=report,
        environ=os.environ if environ is None else environ,
        reserved_names=builtin,
    )
    tools: list[llm.Tool | llm.Toolset] = [*mcp.tools, end_call.tool()]
    all_notes = [*(notes or []), *([TEXT_MODE_NOTE] if text_only else []), *mcp.notes()]
    if form is not None:
        tools.append(form.tool())
        all_notes.append(form.instructions())
    instructions = build_instructions(config, metadata_limit=settings.metadata_prompt_limit, notes=all_notes)

    session: AgentSession = AgentSession(
        # None, not NOT_GIVEN: without a VAD livekit-agents would make its own
        vad=None if text_only else models.vad,
        stt=models.stt if models.stt is not None and not text_only else NOT_GIVEN,
        llm=models.llm,
        tts=models.tts if models.tts is not None and not text_only else NOT_GIVEN,
        # typed turns are committed as they arrive: there is no audio to find turns in
        turn_handling={"turn_detection": "manual"} if text_only else turn_handling(config, models),
        max_tool_steps=5,
        conn_options=_connect_options(settings),
    )
    if audio_input is not None:
        session.input.audio = audio_input
    if audio_output is not None:
        session.output.audio = audio_output

    conversation = Conversation(
        session=session, reporter=reporter, mcp=mcp, form=form, end_call=end_call, models=models
    )
    reporter.attach(session)
    _apologise_on_errors(session)
    _report_voice_fallback(session, models.tts, report)

    def _on_close(ev: CloseEvent) -> None:
        conversation.close_event = ev
        conversation.closed.set()
        asyncio.get_running_loop().create_task(mcp.aclose())

    session.on("close", _on_close)
    await session.start(
        Agent(instructions=instructions, tools=tools),
        room=room if room is not None else NOT_GIVEN,
        room_options=room_options(config),
    )
    report(SessionStarted(agent_version=AGENT_VERSION))
    return conversation


def turn_handling(config: SessionConfig, models: SessionModels) -> TurnHandlingOptions:
    """A voice session's turn handling: the local end-of-turn model and the character's `turn:`.

    Interruptions come from the VAD. The VAD's own silence is set on the VAD itself
    (`agent.providers.session_vad`).
    """
    turn = config.turn
    return {
        "turn_detection": models.turn_detector,
        "endpointing": {"min_delay": turn.min_delay_seconds, "max_delay": turn.max_delay_seconds},
        "interruption": {
            "mode": "vad",
            "min_duration": turn.interrupt_min_speech_seconds,
            "min_words": turn.interrupt_min_words,
        },
    }


INPUT_SAMPLE_RATE = 16_000
"""The rate the room's audio reaches the session at: the one Silero VAD, the end-of-turn
model and Deepgram all take, so it is resampled once (from Opus' 48 kHz, in the decoder)
instead of to livekit's default 24 kHz and then again by each of the three."""


def room_options(config: SessionConfig) -> RoomOptions:
    """How the session meets its room: typed turns always, audio only in a voice session."""
    text_input = TextInputOptions(text_input_cb=take_typed_turn)
    if config.mode == "text":
        return RoomOptions(text_input=text_input, audio_input=False, audio_output=False)
    return RoomOptions(text_input=text_input, audio_input=AudioInputOptions(sample_rate=INPUT_SAMPLE_RATE))


def _connect_options(settings: Settings) -> SessionConnectOptions:
    retry = APIConnectOptions(
        max_retry=settings.provider_max_retry, retry_interval=settings.provider_retry_interval
    )
    return SessionConnectOptions(
        stt_conn_options=retry,
        llm_conn_options=retry,
        tts_conn_options=retry,
        max_unrecoverable_errors=settings.max_provider_errors,
    )


def greet(conversation: Conversation, config: SessionConfig) -> SpeechHandle | None:
    """Speak the session's greeting, interruptible unless the character says not; its handle."""
    if config.greeting.strip():
        return conversation.session.say(config.greeting, allow_interruptions=config.greeting_interruptible)
    return None


def _report_voice_fallback(session: AgentSession, model: tts.TTS | None, report: Report) -> None:
    # The Chatterbox plugin says, per utterance, why it used the default voice
    # instead of the reference clip (refused URL, bad audio...): report each reason once.
    reported: set[str] = set()

    def check(_: object) -> None:
        reason = getattr(model, "voice_fallback", None)
        if isinstance(reason, str) and reason and reason not in reported:
            reported.add(reason)
            report(
                Error(
                    source="voice",
                    message=f"reference audio not used, default voice instead: {reason}"[:2000],
                )
            )

    session.on("conversation_item_added", check)


def _apologise_on_errors(session: AgentSession) -> None:
    last: float | None = None

    def on_error(ev: ErrorEvent) -> None:
        nonlocal last
        recoverable = bool(getattr(ev.error, "recoverable", True))
        if recoverable or error_source(ev.source) not in ("stt", "llm", "tts"):
            return
        now = time.monotonic()
        if last is not None and now - last < _APOLOGY_INTERVAL:
            return
        last = now
        # RuntimeError: the session is already closing after too many failures
        # RuntimeError: the session is already closing after too many failures
        with contextlib.suppress(RuntimeError):
            session.say(APOLOGY, add_to_chat_ctx=False, allow_interruptions=True)

    session.on("error", on_error)
