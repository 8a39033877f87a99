"""`GET` and `POST /v1/sessions/{id}/analysis`: read a session's analysis runs, or queue one more.

Both need an API key. A re-run uses, by default, the character version that handled
the call, so an edited character never rewrites what an old call is judged by;
`{"version": "current"}` asks for the version loaded now.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .analysis import PostCallAnalysis
from .character_versions import CharacterVersions
from .errors import Conflict, ValidationFailed, parse_body, read_json
from .records import SessionRecords
from .schemas import AnalysisRequest
from .session_status import SessionStatus
from .settings import Settings
from .strict_json import json_response

MAX_BODY_BYTES = 1024


class AnalysisViews:
    """The analysis endpoints: the caller and the body checked, the runs read and queued."""

    def __init__(
        self,
        settings: Settings,
        records: SessionRecords,
        analysis: PostCallAnalysis,
        registry: CharacterVersions,
        versions: dict[str, str],
    ) -> None:
        """`versions`: each loaded character's current version, by slug (kept live by reloads)."""
        self._settings = settings
        self._records = records
        self._analysis = analysis
        self._registry = registry
        self._versions = versions

    async def get(self, request: web.Request) -> web.Response:
        """The latest finished run (or null), and every run, newest first."""
        row = await self._records.asked_for(request, self._settings.token_server_api_keys)
        runs = [r.model_dump(mode="json") for r in await self._records.analyses(row.id)]
        latest = next((r for r in runs if r["status"] != "pending"), None)
        return json_response(
            {
                "session_id": row.id,
                "character_version": row.character_version,
                "analysis": latest,
                "pending": any(r["status"] == "pending" for r in runs),
                "runs": runs,
            }
        )

    async def rerun(self, request: web.Request) -> web.Response:
        """Queue a run of an ended session's analysis: 202 with the run."""
        row = await self._records.asked_for(request, self._settings.token_server_api_keys)
        body = await self._body(request)
        if not SessionStatus(row.status).final:
            raise Conflict("The session is still live: it is analysed when it ends.", code="session_live")
        version = self._version(row, body.version)
        found = await self._registry.definition(version)
        if found is None or found[0] != row.character:
            raise self._bad_version(f"{body.version!r} is not a version of the character {row.character!r}")
        if found[1].analysis is None:
            raise ValidationFailed(
                f"Character version {version} has no analysis block.",
                code="analysis_not_configured",
                details=[{"field": "version", "type": "analysis_not_configured", "message": "no analysis"}],
            )
        run = await self._analysis.queue(row.id, version)
        return json_response({"session_id": row.id, "run": run}, status=202)

    async def _body(self, request: web.Request) -> AnalysisRequest:
        raw: Any = {}
        if request.body_exists:
            raw = await read_json(request, max_bytes=MAX_BODY_BYTES)
        return parse_body(AnalysisRequest, raw)

    def _version(self, row: Any, asked: str) -> str:
        if asked == "current":
            current = self._versions.get(row.character)
            if current is None:
                raise self._bad_version(f"the character {row.character!r} is not loaded now")
            return current
        if asked == "session":
            if row.character_version is None:
                raise self._bad_version("this session ran before versions were kept: ask for 'current'")
            return row.character_version
        return asked

    @staticmethod
    def _bad_version(message: str) -> ValidationFailed:
        return ValidationFailed(
            f"The version is not available: {message}.",
            code="version_unavailable",
            details=[{"field": "version", "type": "version_unavailable", "message": message}],
        )
