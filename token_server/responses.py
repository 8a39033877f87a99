"""What the endpoints answer, as pydantic models: the OpenAPI document is built from them.

The read side (`records.py`) returns the session views as these models, and the
handlers dump them; the API fuzz test checks every answer against them. Times are
ISO 8601 in UTC with an offset (`2026-12-01T14:00:00+00:00`), as they always were.
An object may carry more keys than a model names (JSON Schema allows it), so adding a
field to a record breaks no client and no test.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, PlainSerializer

from contract.model import FormField

from .clock import iso
from .queries import Status

# A stored time, shown as ISO 8601 in UTC (`clock.iso`).
Timestamp = Annotated[dt.datetime, PlainSerializer(iso, return_type=str)]


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
    at: Timestamp | None


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

    at: Timestamp | None
    status_code: int | None
    error: str | None
    duration_ms: float


class WebhookDelivery(BaseModel):
    """The post-call webhook of a session and every attempt at it."""

    id: str
    event: str = Field(
        description="`session.ended`, or `session.analyzed` for an analysis that came after it"
    )
    url: str
    status: str
    attempts: list[WebhookAttempt]
    next_attempt_at: Timestamp | None
    delivered_at: Timestamp | None


class SessionRecord(BaseModel):
    """`GET /v1/sessions/{session_id}`: everything about a session but its event log."""

    session_id: str
    character: str
    character_version: str | None = Field(
        description="the character version that ran the session (see `/v1/characters/{slug}/versions`); "
        "null for sessions recorded before versions were kept"
    )
    status: Status
    end_reason: str | None
    room_name: str
    participant_identity: str
    origin: str | None
    origin_url: str | None
    created_at: Timestamp
    joined_at: Timestamp | None
    user_joined_at: Timestamp | None
    agent_joined_at: Timestamp | None
    ended_at: Timestamp | None
    history: list[StatusChange]
    metadata: dict[str, Any] = Field(description="verified: from an API key or a session grant")
    unverified_metadata: dict[str, Any] = Field(description="what the page sent; the user's word")
    config: dict[str, Any] = Field(description="the effective session configuration (no secrets)")
    usage: dict[str, Any] | None
    form: FormState
    webhooks: list[WebhookDelivery] | None = Field(
        None, description="the post-call webhook's deliveries; not in the webhook's own copy"
    )


class SessionListItem(BaseModel):
    """One line of the session list."""

    session_id: str
    character: str
    status: Status
    end_reason: str | None
    origin: str | None
    created_at: Timestamp
    ended_at: Timestamp | None


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


class CharacterVersion(BaseModel):
    """One version of a character: its public definition (secrets redacted) and its use."""

    version: str = Field(description="the SHA-256 of the public definition, first 16 hex digits")
    current: bool = Field(description="the version new sessions get now")
    created_at: dt.datetime = Field(description="when this server first loaded it")
    first_used_at: dt.datetime | None
    last_used_at: dt.datetime | None
    sessions: int = Field(description="how many sessions ran it")
    has_analysis: bool
    definition: dict[str, Any] = Field(description="the character file as loaded; secret values `[redacted]`")


class CharacterVersions(BaseModel):
    """`GET /v1/characters/{slug}/versions`: newest first."""

    character: str
    current: str | None = Field(description="the version loaded now; null if the character was removed")
    versions: list[CharacterVersion]


class ReloadedCharacter(BaseModel):
    """One character after a reload."""

    slug: str
    version: str
    changed: bool = Field(description="a new version, or a character that was not loaded before")


class CharactersReloaded(BaseModel):
    """`POST /v1/characters/reload`: the set now live."""

    characters: list[ReloadedCharacter]


class AnalysisRun(BaseModel):
    """One run of a session's post-call analysis."""

    id: str
    status: Literal["pending", "succeeded", "failed"]
    trigger: Literal["session_ended", "rerun"]
    character_version: str = Field(description="the character version whose analysis block it ran")
    model: str | None = Field(description="the analysis LLM's model")
    attempts: int
    error: str | None = Field(description="why the last attempt failed")
    result: dict[str, Any] | None = Field(
        description="`summary`, `fields` (each with `value`, `captured`, `extracted`, `disagrees`), "
        "`disagreements`, `success` (each `answer` and `reason`) and `succeeded`"
    )
    usage: dict[str, Any] | None = Field(description="the analysis LLM's tokens, apart from the call's")
    created_at: Timestamp
    finished_at: Timestamp | None


class SessionAnalysis(BaseModel):
    """`GET /v1/sessions/{session_id}/analysis`."""

    session_id: str
    character_version: str | None
    analysis: AnalysisRun | None = Field(description="the latest finished run")
    pending: bool = Field(description="a run is queued or under way")
    runs: list[AnalysisRun] = Field(description="every run, newest first")


class AnalysisQueued(BaseModel):
    """`POST /v1/sessions/{session_id}/analysis`: the run queued."""

    session_id: str
    run: AnalysisRun
