"""What the agent worker reports to the token server about a session.

The worker posts batches to `POST /internal/v1/sessions/{session_id}/events`,
authenticated by the ingest token (`contract/ingest_token.py`). Every event
carries an `id` unique within its session, so a retried batch is stored once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .redaction import redact_arguments

INGEST_PATH = "/internal/v1/sessions/{session_id}/events"
MAX_BATCH_EVENTS = 500
MAX_BATCH_BYTES = 256 * 1024
_TEXT = 20_000


def new_event_id() -> str:
    """A fresh, unique event id."""
    return uuid.uuid4().hex


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=new_event_id, min_length=1, max_length=64)
    at: dt.datetime = Field(default_factory=lambda: dt.datetime.now(dt.UTC))


class SessionStarted(_Event):
    """The agent joined the room and is ready to talk."""

    type: Literal["session_started"] = "session_started"
    agent_version: str = Field("", max_length=64)


class UserJoined(_Event):
    """The user (not the agent) is in the room: the session's join window is met."""

    type: Literal["user_joined"] = "user_joined"
    identity: str = Field(max_length=128)


class Transcript(_Event):
    """One finished turn by the user or the agent. Times are seconds since session start.

    `source` says how the words travelled: `voice` (spoken, and transcribed for the
    log) or `text` (a typed turn on `lk.chat`, or an agent reply in a text-only session).
    """

    type: Literal["transcript"] = "transcript"
    role: Literal["user", "agent"]
    source: Literal["voice", "text"] = "voice"
    text: str = Field(max_length=_TEXT)
    start_time: float | None = None
    end_time: float | None = None
    interrupted: bool = False
    language: str | None = Field(None, max_length=35)


class ToolCall(_Event):
    """One tool call: MCP (`server` set) or built-in (form, end_call)."""

    type: Literal["tool_call"] = "tool_call"
    server: str | None = Field(None, max_length=64)
    tool: str = Field(max_length=128)
    duration_ms: float = Field(ge=0)
    ok: bool
    error: str | None = Field(None, max_length=2_000)
    # Arguments as the tool received them, with secret values removed at any depth.
    arguments: dict[str, Any] = Field(default_factory=dict)

    @field_validator("arguments")
    @classmethod
    def _redact(cls, value: dict[str, Any]) -> dict[str, Any]:
        # Runs where the worker builds the event and where the token server reads it.
        return redact_arguments(value)


class FormUpdated(_Event):
    """An accepted answer for one form field."""

    type: Literal["form_updated"] = "form_updated"
    field: str = Field(max_length=64)
    value: Any


class Metrics(_Event):
    """Per-turn latency, in milliseconds; a stage that did not run is null."""

    type: Literal["metrics"] = "metrics"
    turn_id: str | None = Field(None, max_length=64)
    end_of_turn_delay_ms: float | None = None
    transcription_delay_ms: float | None = None
    llm_ttft_ms: float | None = None
    tts_ttfb_ms: float | None = None
    e2e_latency_ms: float | None = None


class Error(_Event):
    """Something went wrong; `recoverable` says whether the conversation went on."""

    type: Literal["error"] = "error"
    source: Literal["stt", "llm", "tts", "mcp", "voice", "config", "agent"]
    message: str = Field(max_length=2_000)
    recoverable: bool = True


class Usage(BaseModel):
    """What a session consumed."""

    model_config = ConfigDict(extra="forbid")

    audio_seconds_in: float = Field(0.0, ge=0)
    audio_seconds_out: float = Field(0.0, ge=0)
    llm_prompt_tokens: int = Field(0, ge=0)
    llm_completion_tokens: int = Field(0, ge=0)
    tts_characters: int = Field(0, ge=0)


class SessionEnded(_Event):
    """The agent is done with the session."""

    type: Literal["session_ended"] = "session_ended"
    reason: str = Field(max_length=200)
    usage: Usage = Field(default_factory=Usage)


SessionEvent = Annotated[
    SessionStarted | UserJoined | Transcript | ToolCall | FormUpdated | Metrics | Error | SessionEnded,
    Field(discriminator="type"),
]


class EventBatch(BaseModel):
    """The body of one ingest request."""

    model_config = ConfigDict(extra="forbid")

    events: list[SessionEvent] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)
