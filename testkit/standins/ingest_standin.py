"""A stand-in for the token server's ingest endpoint, faithful to its contract.

`POST /internal/v1/sessions/{session_id}/events` with `Authorization: Bearer
<ingest token>` and an `EventBatch` body answers 200 {"accepted", "duplicates"};
401 for a bad token, 409 for a session it was told has ended long ago, 413 for
a body over the limit, 422 for an invalid batch. It can be told to answer 503 to
the next requests, to stand for a token server that is briefly down.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from pydantic import ValidationError

from contract.events import INGEST_PATH, MAX_BATCH_BYTES, EventBatch
from contract.ingest_token import verify_ingest_token


@dataclass
class IngestStandIn:
    """Stored events per session, and every request's fate."""

    api_key: str
    api_secret: str
    fail_next: int = 0
    ended_sessions: set[str] = field(default_factory=set)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    batches: list[list[str]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    attempts: list[list[str]] = field(default_factory=list)
    status_override: int | None = None
    max_bytes: int = MAX_BATCH_BYTES

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(client_max_size=MAX_BATCH_BYTES * 2)
        app.router.add_post(INGEST_PATH, self._ingest)
        return app

    def of(self, session_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        """The stored events of a session, optionally of one type."""
        return [e for e in self.events.get(session_id, []) if kind is None or e["type"] == kind]

    async def _ingest(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
            self.attempts.append([e.get("id") for e in body.get("events", [])])
        except (ValueError, AttributeError):
            self.attempts.append([])
        resp = await self._handle(request)
        self.statuses.append(resp.status)
        return resp

    async def _handle(self, request: web.Request) -> web.Response:
        session_id = request.match_info["session_id"]
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.json_response({"error": "unavailable"}, status=503)
        if self.status_override is not None:
            return web.json_response({"error": "scripted"}, status=self.status_override)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return web.json_response({"error": "unauthorized"}, status=401)
        try:
            subject = verify_ingest_token(auth.removeprefix("Bearer "), self.api_key, self.api_secret)
        except jwt.InvalidTokenError:
            return web.json_response({"error": "unauthorized"}, status=401)
        if subject != session_id:
            return web.json_response({"error": "unauthorized"}, status=401)
        if session_id in self.ended_sessions:
            return web.json_response({"error": "session ended"}, status=409)
        body = await request.read()
        if len(body) > self.max_bytes:
            return web.json_response({"error": "too large"}, status=413)
        try:
            batch = EventBatch.model_validate_json(body)
        except ValidationError:
            return web.json_response({"error": "invalid"}, status=422)
        stored = self.events.setdefault(session_id, [])
        seen = {e["id"] for e in stored}
        accepted = duplicates = 0
        ids = []
        for event in batch.events:
            ids.append(event.id)
            if event.id in seen:
                duplicates += 1
                continue
            seen.add(event.id)
            stored.append(event.model_dump(mode="json"))
            accepted += 1
        self.batches.append(ids)
        return web.json_response({"accepted": accepted, "duplicates": duplicates})
