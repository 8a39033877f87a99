"""What the endpoints answer, as pydantic models: the OpenAPI document is built from them.

The read side writes plain dicts (`records.py`); these models say what
those dicts hold, and the API fuzz test checks every answer against them. An object
may carry more keys than a model names (JSON Schema allows it), so adding a field to a
record breaks no client and no test.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from contract.model import FormField

from .queries import Status


class ErrorDetail(BaseModel):
    """Every error: a stable `code`, a message for people, and `details` that depend on it."""

    code: str = Field(description="stable, for programs: `validation_error`, `session_not_found`, …")
    message: str = Field(description="for people; never a stack trace, never a secret")
    details: list[Any] | dict[str, Any] | None = Field(
        description="for `validation_error`, a list of `{field, type, message}`"
    )


class ErrorResponse(BaseModel):
    """The body of every 4xx and 5xx answer."""

    error: ErrorDetail


class Health(BaseModel):
    """`GET /healthz`."""

    status: Literal["ok", "unavailable"]
    characters: int | None = Field(None, description="how many characters are loaded (when ok)")


class CharacterSummary(BaseModel):
    """An active character as pages see it: no prompt, no secrets."""

    slug: str
    name: str
    description: str
    language: str | None = Field(description="a BCP-47 tag; null: the language of the caller's choice")
    voice_model: str
    greeting: str
    form: list[FormField] | None


class CharacterList(BaseModel):
    """`GET /v1/characters`."""

    characters: list[CharacterSummary]


class StatusChange(BaseModel):
    """One step of a session's history."""

    status: Status
    reason: str | None
    at: dt.datetime | None


class FormAnswer(BaseModel):
    """One form field and its latest answer."""

    name: str
    type: str
    description: str
    required: bool
    value: Any = Field(description="the latest answer, or null")
    filled: bool
    updated_at: str | None


class FormState(BaseModel):
    """`GET /v1/sessions/{session_id}/form`."""

    has_form: bool
    complete: bool = Field(description="every required field is filled")
    fields: list[FormAnswer]


class WebhookAttempt(BaseModel):
    """One try at sending the post-call webhook."""

    at: dt.datetime | None
    status_code: int | None
    error: str | None
    duration_ms: float


class WebhookDelivery(BaseModel):
    """The post-call webhook of a session and every attempt at it."""

    id: str
    url: str
    status: str
    attempts: list[WebhookAttempt]
    next_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None


class SessionRecord(BaseModel):
    """`GET /v1/sessions/{session_id}`: everything about a session but its event log."""

    session_id: str
    character: str
    status: Status
    end_reason: str | None
    room_name: str
    participant_identity: str
    origin: str | None
    origin_url: str | None
    created_at: dt.datetime
    joined_at: dt.datetime | None
    user_joined_at: dt.datetime | None
    agent_joined_at: dt.datetime | None
    ended_at: dt.datetime | None
    history: list[StatusChange]
    metadata: dict[str, Any]
    config: dict[str, Any] = Field(description="the effective session configuration (no secrets)")
    usage: dict[str, Any] | None
    form: FormState
    webhooks: list[WebhookDelivery]


class SessionListItem(BaseModel):
    """One line of the session list."""

    session_id: str
    character: str
    status: Status
    end_reason: str | None
    origin: str | None
    created_at: dt.datetime
    ended_at: dt.datetime | None


class SessionList(BaseModel):
    """`GET /v1/sessions`: a page, newest first."""

    sessions: list[SessionListItem]
    next_cursor: str | None = Field(description="pass it back as `cursor` for the next page; null at the end")


class SessionLogs(BaseModel):
    """`GET /v1/sessions/{session_id}/logs`: a page of events, oldest first."""

    events: list[dict[str, Any]] = Field(description="each event has `id`, `type` and `at`")
    next_cursor: str | None = Field(description="pass it back as `cursor` for the next page; null at the end")


class EventsAccepted(BaseModel):
    """`POST /internal/v1/sessions/{session_id}/events`: what was stored."""

    accepted: int
    duplicates: int = Field(description="events whose id was already stored")


class WebhookReceived(BaseModel):
    """`POST /livekit/webhook`: the session the event was for, if any."""

    ok: bool
    session: str | None
