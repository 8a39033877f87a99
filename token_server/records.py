"""The read side of session records: one session, its form, logs and transcript, the list.

Everything the API and the post-call webhook show about a session is read here, in the
shapes `responses.py` documents (`SessionRecord`, `SessionListItem`, `FormState`,
`SessionLogs`); `retrieval.py` only checks the caller and the query. The write side,
and the few reads its decisions need, are `store.py`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from pydantic import SecretStr

from .access import require_api_key
from .db import (
    session_analyses,
    session_events,
    session_status_changes,
    sessions,
    webhook_attempts,
    webhook_deliveries,
)
from .errors import NotFound
from .queries import session_id as path_session_id
from .responses import (
    AnalysisRun,
    FormAnswer,
    FormState,
    SessionListItem,
    SessionRecord,
    StatusChange,
    WebhookAttempt,
    WebhookDelivery,
)
from .session_status import SessionStatus
from .store import SessionStore

_TRANSCRIPT_KEYS = ("role", "source", "text", "start_time", "end_time", "interrupted", "at")


def form_state(config: dict[str, Any], updates: list[dict[str, Any]]) -> FormState:
    """Each form field with its latest value, whether it is filled, and when it changed."""
    form = config.get("form") or {"fields": []}
    latest: dict[str, dict[str, Any]] = {}
    for update in updates:
        latest[update["field"]] = update
    fields = []
    for field in form["fields"]:
        answer = latest.get(field["name"])
        fields.append(
            FormAnswer(
                name=field["name"],
                type=field["type"],
                description=field.get("description", ""),
                required=field.get("required", False),
                value=answer["value"] if answer else None,
                filled=answer is not None,
                updated_at=answer["at"] if answer else None,
            )
        )
    return FormState(
        has_form=bool(form["fields"]),
        complete=all(f.filled for f in fields if f.required),
        fields=fields,
    )


def end_reason(row: sa.Row) -> str | None:
    """Why a session is over, once it is; None while it is live."""
    return row.status_reason if SessionStatus(row.status).final else None


def list_item(row: sa.Row) -> SessionListItem:
    """One line of the session list."""
    return SessionListItem(
        session_id=row.id,
        character=row.character,
        status=row.status,
        end_reason=end_reason(row),
        origin=row.origin,
        created_at=row.created_at,
        ended_at=row.ended_at,
    )


def analysis_run(row: Any) -> AnalysisRun:
    """One post-call analysis run."""
    return AnalysisRun(
        id=row.id,
        status=row.status,
        trigger=row.trigger,
        character_version=row.character_version,
        model=row.model,
        attempts=row.attempts,
        error=row.error,
        result=row.result,
        usage=row.usage,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


class SessionRecords:
    """Reads session records as the API and the post-call webhook show them."""

    def __init__(self, store: SessionStore) -> None:
        """Read through `store`'s database (and its lookup of one session)."""
        self._store = store
        self._db = store.db

    async def get(self, session_id: str) -> sa.Row | None:
        """One session's row, or None."""
        return await self._store.get(session_id)

    async def asked_for(self, request: web.Request, api_keys: list[SecretStr]) -> sa.Row:
        """The row of the session a request's path names, for a caller with an API key.

        Raises:
            Unauthorized: the request carries none of `api_keys`.
            NotFound: there is no such session (404 `session_not_found`).
        """
        require_api_key(request, api_keys)
        row = await self.get(path_session_id(request))
        if row is None:
            raise NotFound("No such session.", code="session_not_found")
        return row

    async def summary(self, row: sa.Row, *, with_deliveries: bool = True) -> SessionRecord:
        """Everything about one session but its event log; no secrets are stored to show."""
        config = dict(row.config)
        history = await self.history(row.id)
        return SessionRecord(
            session_id=row.id,
            character=row.character,
            character_version=row.character_version,
            status=row.status,
            end_reason=end_reason(row),
            room_name=row.room_name,
            participant_identity=row.participant_identity,
            origin=row.origin,
            origin_url=row.origin_url,
            created_at=row.created_at,
            joined_at=row.joined_at,
            user_joined_at=row.user_joined_at,
            agent_joined_at=row.agent_joined_at,
            ended_at=row.ended_at,
            history=[StatusChange(status=h.status, reason=h.reason, at=h.at) for h in history],
            metadata=config.get("metadata", {}),
            unverified_metadata=config.get("unverified_metadata", {}),
            config=config,
            usage=row.usage,
            form=form_state(config, await self.form_updates(row.id)),
            webhooks=await self.deliveries(row.id) if with_deliveries else None,
        )

    async def form(self, row: sa.Row) -> FormState:
        """The session's form and its latest answers."""
        return form_state(dict(row.config), await self.form_updates(row.id))

    async def events(
        self, session_id: str, *, after: int, limit: int, types: list[str] | None = None
    ) -> list[sa.Row]:
        """A page of a session's events (seq, data) in the order they were stored."""
        query = (
            sa.select(session_events.c.seq, session_events.c.data)
            .where(session_events.c.session_id == session_id, session_events.c.seq > after)
            .order_by(session_events.c.seq)
            .limit(limit)
        )
        if types:
            query = query.where(session_events.c.type.in_(types))
        async with self._db.connect() as conn:
            return list((await conn.execute(query)).all())

    async def form_updates(self, session_id: str) -> list[dict[str, Any]]:
        """Every accepted form answer of a session, oldest first."""
        query = (
            sa.select(session_events.c.data)
            .where(session_events.c.session_id == session_id, session_events.c.type == "form_updated")
            .order_by(session_events.c.seq)
        )
        async with self._db.connect() as conn:
            return [row.data for row in await conn.execute(query)]

    async def history(self, session_id: str) -> list[sa.Row]:
        """A session's status changes, oldest first."""
        query = (
            sa.select(
                session_status_changes.c.status, session_status_changes.c.reason, session_status_changes.c.at
            )
            .where(session_status_changes.c.session_id == session_id)
            .order_by(session_status_changes.c.id)
        )
        async with self._db.connect() as conn:
            return list((await conn.execute(query)).all())

    async def transcript(self, session_id: str) -> list[dict[str, Any]]:
        """Every transcript item of a session, in order."""
        out: list[dict[str, Any]] = []
        after = 0
        while page := await self.events(session_id, after=after, limit=1000, types=["transcript"]):
            out.extend(
                # (transcripts stored before typed turns existed were all spoken)
                {k: row.data.get(k, "voice" if k == "source" else None) for k in _TRANSCRIPT_KEYS}
                for row in page
            )
            after = page[-1].seq
        return out

    async def list_sessions(
        self,
        *,
        character: str | None,
        status: SessionStatus | None,
        since: dt.datetime | None,
        limit: int,
        before: tuple[dt.datetime, str] | None,
    ) -> list[sa.Row]:
        """A page of sessions, newest first; `before` is the last (created_at, id) seen."""
        query = sa.select(sessions).order_by(sessions.c.created_at.desc(), sessions.c.id.desc()).limit(limit)
        if character:
            query = query.where(sessions.c.character == character)
        if status:
            query = query.where(sessions.c.status == status)
        if since:
            query = query.where(sessions.c.created_at >= since)
        if before:
            created, sid = before
            query = query.where(
                sa.or_(
                    sessions.c.created_at < created,
                    sa.and_(sessions.c.created_at == created, sessions.c.id < sid),
                )
            )
        async with self._db.connect() as conn:
            return list((await conn.execute(query)).all())

    async def deliveries(self, session_id: str) -> list[WebhookDelivery]:
        """A session's post-call webhook deliveries, each with its attempts."""
        async with self._db.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(webhook_deliveries)
                    .where(webhook_deliveries.c.session_id == session_id)
                    .order_by(webhook_deliveries.c.created_at)
                )
            ).all()
            out = []
            for row in rows:
                attempts = (
                    await conn.execute(
                        sa.select(webhook_attempts)
                        .where(webhook_attempts.c.delivery_id == row.id)
                        .order_by(webhook_attempts.c.id)
                    )
                ).all()
                out.append(
                    WebhookDelivery(
                        id=row.id,
                        event=row.event,
                        url=row.url,
                        status=row.status,
                        attempts=[
                            WebhookAttempt(
                                at=a.at, status_code=a.status_code, error=a.error, duration_ms=a.duration_ms
                            )
                            for a in attempts
                        ],
                        next_attempt_at=row.next_attempt_at,
                        delivered_at=row.delivered_at,
                    )
                )
            return out

    async def analyses(self, session_id: str) -> list[AnalysisRun]:
        """Every post-call analysis run of a session, newest first."""
        query = (
            sa.select(session_analyses)
            .where(session_analyses.c.session_id == session_id)
            .order_by(session_analyses.c.created_at.desc(), session_analyses.c.id.desc())
        )
        async with self._db.connect() as conn:
            return [analysis_run(r) for r in await conn.execute(query)]

    async def post_call_payload(self, session_id: str, event: str = "session.ended") -> dict[str, Any]:
        """What a post-call webhook sends.

        `session.ended`: the summary, the transcript, the form answers and the latest
        finished analysis run (null when there is none yet); `session.analyzed`: the
        summary and that run.
        """
        row = await self.get(session_id)
        if row is None:
            return {"session": None}
        summary = (await self.summary(row, with_deliveries=False)).model_dump(
            mode="json", exclude={"webhooks"}
        )
        runs = await self.analyses(session_id)
        latest = runs[0].model_dump(mode="json") if runs and runs[0].status != "pending" else None
        if event == "session.analyzed":
            return {"session": summary, "analysis": latest}
        return {
            "session": summary,
            "transcript": await self.transcript(session_id),
            "form": summary["form"],
            "analysis": latest,
        }
