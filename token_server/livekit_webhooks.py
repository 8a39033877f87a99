"""`POST /livekit/webhook`: LiveKit's room and participant events, signed by LiveKit."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from aiohttp import web
from google.protobuf.json_format import Parse, ParseError
from livekit import api

from .clock import utcnow
from .errors import BadRequest, Unauthorized
from .lifecycle import SessionLifecycle
from .settings import Settings
from .store import SessionStore

# The events a session's log keeps; the others only move its lifecycle, or nothing.
RECORDED = ("room_started", "participant_joined", "participant_left", "room_finished")


class LiveKitWebhooks:
    """Records LiveKit's events in the session whose room they are about."""

    def __init__(self, settings: Settings, store: SessionStore, lifecycle: SessionLifecycle) -> None:
        """Verify with the LiveKit credentials in `settings`; record in `store`."""
        self._store = store
        self._lifecycle = lifecycle
        secret = settings.livekit_api_secret.get_secret_value()
        self._verifier = api.TokenVerifier(settings.livekit_api_key, secret)

    async def receive(self, request: web.Request) -> web.Response:
        """`POST /livekit/webhook`: one event, recorded and acted on."""
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
        if kind in RECORDED:
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
