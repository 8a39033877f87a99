"""`POST /internal/v1/sessions/{id}/events`: the worker's reports, signed with the ingest token."""

from __future__ import annotations

import datetime as dt

import jwt
from aiohttp import web
from pydantic import ValidationError

from contract.events import MAX_BATCH_BYTES, MAX_BATCH_EVENTS, EventBatch
from contract.ingest_token import verify_ingest_token
from contract.validation import validation_problems

from .access import bearer_token
from .clock import as_utc, utcnow
from .errors import Conflict, NotFound, PayloadTooLarge, Unauthorized, ValidationFailed, read_json
from .lifecycle import SessionLifecycle
from .settings import Settings
from .store import SessionStore


class WorkerEvents:
    """Stores the worker's event batches and moves the session's lifecycle on them."""

    def __init__(self, settings: Settings, store: SessionStore, lifecycle: SessionLifecycle) -> None:
        """Verify ingest tokens with the LiveKit credentials in `settings`; record in `store`."""
        self._settings = settings
        self._store = store
        self._lifecycle = lifecycle

    async def receive(self, request: web.Request) -> web.Response:
        """`POST /internal/v1/sessions/{id}/events`: a batch of the worker's reports."""
        session_id = request.match_info["session_id"]
        token = bearer_token(request)
        settings = self._settings
        try:
            if token is None:
                raise jwt.InvalidTokenError
            subject = verify_ingest_token(
                token, settings.livekit_api_key, settings.livekit_api_secret.get_secret_value()
            )
        except jwt.InvalidTokenError:
            raise Unauthorized(
                "The ingest token is missing, expired or not valid.", code="invalid_token"
            ) from None
        if subject != session_id:
            raise Unauthorized("The ingest token is for another session.", code="invalid_token")
        row = await self._store.get(session_id)
        if row is None:
            raise NotFound("No such session.", code="session_not_found")
        late = dt.timedelta(seconds=settings.late_event_window_seconds)
        if row.ended_at is not None and utcnow() - as_utc(row.ended_at) > late:
            raise Conflict("The session ended too long ago to accept events.", code="session_closed")

        raw = await read_json(request, max_bytes=MAX_BATCH_BYTES)
        if (
            isinstance(raw, dict)
            and isinstance(raw.get("events"), list)
            and len(raw["events"]) > MAX_BATCH_EVENTS
        ):
            raise PayloadTooLarge(f"At most {MAX_BATCH_EVENTS} events a batch.", code="too_many_events")
        try:
            batch = EventBatch.model_validate(raw)
        except ValidationError as exc:
            raise ValidationFailed(
                "Some events are not valid.", details=validation_problems(exc, root="(body)")
            ) from None

        # Tool-call arguments were redacted as the batch validated (`ToolCall`).
        events = [event.model_dump(mode="json") for event in batch.events]
        accepted = await self._store.record_events(session_id, events)
        for event in batch.events:
            if event.type == "session_started":
                await self._lifecycle.joined(session_id, "agent_started", user=False)
            elif event.type == "user_joined":
                await self._lifecycle.joined(session_id, "user_joined", user=True)
            elif event.type == "session_ended":
                usage = event.usage.model_dump()
                await self._lifecycle.end(session_id, row.character, f"agent:{event.reason}", usage=usage)
        return web.json_response({"accepted": accepted, "duplicates": len(events) - accepted})
