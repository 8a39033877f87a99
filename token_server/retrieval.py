"""Retrieving sessions by id: summary, logs, form answers, and the session list.

Every endpoint here needs an API key (`Authorization: Bearer …`).
"""

from __future__ import annotations

import base64
import datetime as dt
import json

from aiohttp import web

from .access import require_api_key
from .errors import NotFound, ValidationFailed
from .records import form_state, list_item, session_summary
from .settings import Settings
from .store import LIVE_STATUSES, SessionStore, as_utc
from .strict_json import json_response

DEFAULT_PAGE = 100
MAX_PAGE = 1000
STATUSES = (*LIVE_STATUSES, "ended", "failed")


def _bad_query(name: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        f"The query parameter {name!r} is not valid: {message}.",
        details=[{"field": name, "type": "query", "message": message}],
    )


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", str(DEFAULT_PAGE))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise _bad_query("limit", f"a whole number from 1 to {MAX_PAGE}")
    return int(raw)


def _encode_cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _decode_cursor(request: web.Request) -> object | None:
    raw = request.query.get("cursor")
    if not raw:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except ValueError:
        raise _bad_query("cursor", "use the next_cursor of a previous page") from None


class Retrieval:
    """The read side of session records."""

    def __init__(self, settings: Settings, store: SessionStore) -> None:
        """Check keys from `settings`; read from `store`."""
        self._settings = settings
        self._store = store

    async def _session(self, request: web.Request):
        require_api_key(request, self._settings.token_server_api_keys)
        row = await self._store.get(request.match_info["session_id"])
        if row is None:
            raise NotFound("No such session.", code="session_not_found")
        return row

    async def session(self, request: web.Request) -> web.Response:
        """`GET /v1/sessions/{id}`."""
        row = await self._session(request)
        return json_response(await session_summary(self._store, row))

    async def logs(self, request: web.Request) -> web.Response:
        """`GET /v1/sessions/{id}/logs?limit=&cursor=&types=`: events in order, a page at a time."""
        row = await self._session(request)
        limit = _limit(request)
        cursor = _decode_cursor(request)
        if cursor is not None and not isinstance(cursor, int):
            raise _bad_query("cursor", "use the next_cursor of a previous page")
        types = [t for t in request.query.get("types", "").split(",") if t] or None
        page = await self._store.events(row.id, after=cursor or 0, limit=limit, types=types)
        next_cursor = _encode_cursor(page[-1].seq) if len(page) == limit else None
        return json_response({"events": [r.data for r in page], "next_cursor": next_cursor})

    async def form(self, request: web.Request) -> web.Response:
        """`GET /v1/sessions/{id}/form`: each field, its value, and whether the form is complete."""
        row = await self._session(request)
        return json_response(form_state(dict(row.config), await self._store.form_updates(row.id)))

    async def list(self, request: web.Request) -> web.Response:
        """`GET /v1/sessions?character=&status=&since=&limit=&cursor=`: newest first."""
        require_api_key(request, self._settings.token_server_api_keys)
        limit = _limit(request)
        status = request.query.get("status") or None
        if status is not None and status not in STATUSES:
            raise _bad_query("status", f"one of {', '.join(STATUSES)}")
        since = None
        if raw_since := request.query.get("since"):
            try:
                since = as_utc(dt.datetime.fromisoformat(raw_since))
            except ValueError:
                raise _bad_query("since", "an ISO 8601 time such as 2026-01-31T12:00:00Z") from None
        before = None
        if (cursor := _decode_cursor(request)) is not None:
            try:
                created, sid = cursor  # type: ignore[misc]
                before = (dt.datetime.fromisoformat(created), str(sid))
            except (TypeError, ValueError):
                raise _bad_query("cursor", "use the next_cursor of a previous page") from None
        rows = await self._store.list_sessions(
            character=request.query.get("character") or None,
            status=status,
            since=since,
            limit=limit,
            before=before,
        )
        next_cursor = None
        if len(rows) == limit:
            last = rows[-1]
            next_cursor = _encode_cursor([as_utc(last.created_at).isoformat(), last.id])
        return json_response({"sessions": [list_item(r) for r in rows], "next_cursor": next_cursor})
