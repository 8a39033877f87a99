"""What flows into a session record: LiveKit's webhooks and the worker's reports."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
from typing import Any

import jwt
from aiohttp import web
from google.protobuf.json_format import Parse, ParseError
from livekit import api
from pydantic import ValidationError

from characters.events import MAX_BATCH_BYTES, MAX_BATCH_EVENTS, EventBatch, verify_ingest_token

from .access import bearer_token
from .errors import BadRequest, Conflict, NotFound, PayloadTooLarge, Unauthorized, ValidationFailed, read_json
from .lifecycle import SessionLifecycle
from .session_start import validation_details
from .settings import Settings
from .store import SessionStore, as_utc, utcnow

log = logging.getLogger("token_server.ingest")


class Ingest:
    """Receives LiveKit webhooks and worker event batches."""

    def __init__(self, settings: Settings, store: SessionStore, lifecycle: SessionLifecycle) -> None:
        """Verify with the LiveKit credentials in `settings`; record in `store`."""
        self._settings = settings
        self._store = store
        self._lifecycle = lifecycle
        secret = settings.livekit_api_secret.get_secret_value()
        self._verifier = api.TokenVerifier(settings.livekit_api_key, secret)

    async def livekit_webhook(self, request: web.Request) -> web.Response:
        """`POST /livekit/webhook`: room and participant events, signed by LiveKit."""
        # The raw bytes, whatever charset the request names: the signature covers them,
        # so nothing is decoded before it is checked.
        body = await request.read()
        auth = request.headers.get("Authorization", "")
        auth = auth.removeprefix("Bearer ").strip()
        if not self._signature_valid(body, auth):
            raise Unauthorized("The webhook signature is not valid.", code="invalid_signature")
        try:
            event = Parse(body.decode("utf-8"), api.WebhookEvent(), ignore_unknown_fields=True)
        except (UnicodeDecodeError, ParseError, ValueError, RecursionError):
            raise BadRequest("The webhook body is not a LiveKit event in UTF-8 JSON.") from None
        row = await self._store.by_room(event.room.name) if event.room.name else None
        if row is None:
            return web.json_response({"ok": True, "session": None})
        kind = event.event
        if kind in ("room_started", "participant_joined", "participant_left", "room_finished"):
            data: dict[str, Any] = {"id": f"lk:{event.id}", "type": kind, "at": utcnow().isoformat()}
            if event.participant.identity:
                kind_name = api.ParticipantInfo.Kind.Name(event.participant.kind)
                data["participant"] = {"identity": event.participant.identity, "kind": kind_name}
            await self._store.record_events(row.id, [data])
        if kind == "participant_joined":
            is_agent = event.participant.kind == api.ParticipantInfo.Kind.AGENT
            reason = "agent_joined" if is_agent else "participant_joined"
            await self._lifecycle.joined(row.id, reason, user=not is_agent)
        elif kind == "participant_left" and event.participant.kind == api.ParticipantInfo.Kind.AGENT:
            # An agent that ends a call reports it first; one that just leaves (its worker
            # died or was stopped) leaves the user in a silent room: close it.
            await self._lifecycle.agent_left(row.id, row.character, row.room_name)
        elif kind == "room_finished":
            await self._lifecycle.end(row.id, row.character, "room_finished")
        return web.json_response({"ok": True, "session": row.id})

    def _signature_valid(self, body: bytes, auth: str) -> bool:
        """Whether `auth` is LiveKit's token for exactly these bytes (its `sha256` claim)."""
        try:
            claims = self._verifier.verify(auth)
            claimed = base64.b64decode(claims.sha256 or "", validate=True)
        except Exception:  # the verifier raises jwt's errors or bare ones; base64 its own
            return False
        return bool(claimed) and hmac.compare_digest(hashlib.sha256(body).digest(), claimed)

    async def events(self, request: web.Request) -> web.Response:
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
            raise ValidationFailed("Some events are not valid.", details=validation_details(exc)) from None

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
