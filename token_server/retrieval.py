"""Retrieving sessions by id: summary, logs, form answers, the session list; and character versions.

Every endpoint here needs an API key (`Authorization: Bearer …`).
"""

from __future__ import annotations

import re

from aiohttp import web

from .access import require_api_key
from .character_versions import CharacterVersions
from .clock import as_utc
from .errors import NotFound
from .queries import (
    SLUG_PATTERN,
    LogsQuery,
    SessionListQuery,
    encode_cursor,
    list_before,
    list_cursor,
    logs_after,
    read_query,
)
from .records import SessionRecords, list_item
from .responses import SessionList
from .session_status import SessionStatus
from .settings import Settings
from .strict_json import json_response


class Retrieval:
    """The API's session endpoints: the caller and the query checked, the record read by `records`."""

    def __init__(
        self,
        settings: Settings,
        records: SessionRecords,
        registry: CharacterVersions,
        versions: dict[str, str],
    ) -> None:
        """Check keys from `settings`; read from `records` and `registry`; `versions`: the current ones by slug."""
        self._settings = settings
        self._records = records
        self._registry = registry
        self._versions = versions

    async def session(self, request: web.Request) -> web.Response:
        """`GET /v1/sessions/{id}`."""
        row = await self._records.asked_for(request, self._settings.token_server_api_keys)
        return json_response((await self._records.summary(row)).model_dump(mode="json"))

    async def logs(self, request: web.Request) -> web.Response:
        """`GET /v1/sessions/{id}/logs?limit=&cursor=&types=`: events in order, a page at a time."""
        row = await self._records.asked_for(request, self._settings.token_server_api_keys)
        query = read_query(request, LogsQuery)
        after = logs_after(query)
        page = await self._records.events(row.id, after=after, limit=query.limit, types=query.type_names)
        next_cursor = encode_cursor(page[-1].seq) if len(page) == query.limit else None
        return json_response({"events": [r.data for r in page], "next_cursor": next_cursor})

    async def form(self, request: web.Request) -> web.Response:
        """`GET /v1/sessions/{id}/form`: each field, its value, and whether the form is complete."""
        row = await self._records.asked_for(request, self._settings.token_server_api_keys)
        return json_response((await self._records.form(row)).model_dump(mode="json"))

    async def list(self, request: web.Request) -> web.Response:
        """`GET /v1/sessions?character=&status=&since=&limit=&cursor=`: newest first."""
        require_api_key(request, self._settings.token_server_api_keys)
        query = read_query(request, SessionListQuery)
        rows = await self._records.list_sessions(
            character=query.character,
            status=SessionStatus(query.status) if query.status else None,
            since=as_utc(query.since) if query.since else None,
            limit=query.limit,
            before=list_before(query),
        )
        next_cursor = list_cursor(rows[-1].created_at, rows[-1].id) if len(rows) == query.limit else None
        page = SessionList(sessions=[list_item(r) for r in rows], next_cursor=next_cursor)
        return json_response(page.model_dump(mode="json"))

    async def character_versions(self, request: web.Request) -> web.Response:
        """`GET /v1/characters/{slug}/versions`: every version, newest first, with first and last use."""
        require_api_key(request, self._settings.token_server_api_keys)
        slug = request.match_info["slug"]
        if not _SLUG.match(slug):
            raise NotFound("No such character.", code="character_not_found")
        versions = await self._registry.of_character(slug, current=self._versions.get(slug))
        if not versions:
            raise NotFound("No version of this character was ever loaded.", code="character_not_found")
        return json_response({"character": slug, "current": self._versions.get(slug), "versions": versions})


_SLUG = re.compile(SLUG_PATTERN)
