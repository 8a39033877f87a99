"""Session records in the database, and the concurrency slots they hold.

A session holds a slot while it is `pending` or `active`. Each character has a
counter of its live sessions in `slot_counts`: a start takes a slot with one
conditional UPDATE (`live < limit`) in the transaction that records the session,
and the transition that ends it gives the slot back in its own transaction. So N
parallel starts against a limit of k create exactly k sessions, across processes
too, at a cost that does not grow with the number of live sessions. The optional
global cap counts live sessions under a lock (SQLite: the write lock of `BEGIN
IMMEDIATE`; PostgreSQL: a transaction-scoped advisory lock).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from .analysis_status import AnalysisStatus, AnalysisTrigger
from .clock import as_utc, utcnow
from .db import (
    Database,
    character_versions,
    is_sqlite,
    session_analyses,
    session_events,
    session_grants,
    session_status_changes,
    sessions,
    slot_counts,
    webhook_deliveries,
)
from .session_status import LIVE_STATUSES, SessionStatus

GLOBAL_SCOPE = "*"


@dataclass(frozen=True)
class NewSession:
    """What is recorded when a session starts."""

    id: str
    character: str
    room_name: str
    participant_identity: str
    origin: str | None
    origin_url: str | None
    config: dict[str, Any]
    join_timeout_seconds: int
    max_duration_seconds: int
    agent_join_timeout_seconds: int
    idempotency_key: str | None = None
    request_hash: str | None = None
    grant: UsedGrant | None = None
    character_version: str | None = None


@dataclass(frozen=True)
class UsedGrant:
    """The session grant a start used up: its id, and until when a replay must be refused."""

    jti: str
    forget_after: dt.datetime


class GrantUsed(Exception):
    """The session grant was already used for another session."""


class SlotsFull(Exception):
    """No slot is free; `scope` is the character slug or "*" for the global cap."""

    def __init__(self, scope: str, limit: int) -> None:
        super().__init__(scope, limit)
        self.scope = scope
        self.limit = limit


class Replay(Exception):
    """An earlier session already answered this idempotency key."""

    def __init__(self, row: sa.Row, *, same_request: bool) -> None:
        super().__init__(row.id)
        self.row = row
        self.same_request = same_request


def _lock_key(scope: str) -> int:
    """A stable signed 64-bit advisory-lock key for a scope."""
    return int.from_bytes(hashlib.sha256(f"oshara-slots:{scope}".encode()).digest()[:8], "big", signed=True)


class SessionStore:
    """Writes session records, and reads what the writes decide on (records.py reads the rest)."""

    def __init__(self, db: Database) -> None:
        """Use `db`, already migrated."""
        self._db = db

    @property
    def db(self) -> Database:
        """The database, for queries that belong to other modules."""
        return self._db

    async def reserve(
        self,
        new: NewSession,
        *,
        limit: int,
        global_limit: int | None,
        idempotency_window: dt.timedelta,
    ) -> None:
        """Record `new` as pending if a slot is free.

        Raises:
            SlotsFull: the character's or the global limit is reached.
            Replay: `new.idempotency_key` was used within the window.
            GrantUsed: `new.grant` was used before.
        """
        since = utcnow() - idempotency_window
        try:
            await self._db.write(_reserve, new, limit, global_limit, since)
        except IntegrityError:
            # A parallel request with the same grant or idempotency key committed first.
            if new.grant is not None and await self._db.write(_grant_used, new.grant):
                raise GrantUsed() from None
            if not new.idempotency_key:
                raise
            replay = await self._db.write(_find_replay, new, since)
            if replay is None:
                raise
            raise replay from None

    async def transition(
        self,
        session_id: str,
        status: SessionStatus,
        reason: str,
        *,
        from_statuses: tuple[SessionStatus, ...],
        usage: dict[str, Any] | None = None,
        webhook_url: str | None = None,
        analysis_wait: dt.timedelta = dt.timedelta(0),
    ) -> bool:
        """Move a session to `status` if it is in one of `from_statuses`.

        Returns whether it moved; leaving `pending`/`active` frees its slot. An
        ended or failed session's idempotency key is released, so a retry with the
        same key starts afresh. A session that ends with a `webhook_url` gets its
        post-call delivery queued in the same transaction, so none is lost; so does its
        analysis when the character version that ran it has one, and then the delivery
        waits up to `analysis_wait` for it.
        """
        return await self._db.write(
            _transition, session_id, status, reason, from_statuses, usage, webhook_url, analysis_wait
        )

    async def set_usage(self, session_id: str, usage: dict[str, Any]) -> None:
        """Record what a session consumed (the agent may report it after the end)."""
        await self._db.write(_set_usage, session_id, usage)

    async def record_events(self, session_id: str, events: list[dict[str, Any]]) -> int:
        """Store a batch of reported events; returns how many were new.

        An event whose id this session already has is skipped, so a retried batch
        is stored once.
        """
        if not events:
            return 0
        now = utcnow()
        rows = [
            {
                "session_id": session_id,
                "event_id": e["id"],
                "type": e["type"],
                "at": as_utc(dt.datetime.fromisoformat(e["at"])) if isinstance(e["at"], str) else e["at"],
                "received_at": now,
                "data": e,
            }
            for e in events
        ]
        return await self._db.write(_insert_events, rows)

    async def overdue(self, now: dt.datetime) -> list[tuple[sa.Row, str]]:
        """Live sessions to end now (id, character, room name), with the reason.

        `agent_unavailable`: no agent joined by the agent's deadline (LiveKit drops a
        dispatch no worker can take, so none will); `join_timeout`: the user never
        joined by the join deadline (even if the agent did); `max_duration`: past the
        character's maximum duration. When several hold, the first in that order names
        the end: a missing agent is why nothing else could happen.
        """
        live = sessions.c.status.in_(LIVE_STATUSES)
        no_agent = sa.and_(sessions.c.agent_joined_at.is_(None), sessions.c.agent_deadline < now)
        no_user = sa.and_(sessions.c.user_joined_at.is_(None), sessions.c.join_deadline < now)
        query = sa.select(
            sessions.c.id,
            sessions.c.character,
            sessions.c.room_name,
            no_agent.label("no_agent"),
            no_user.label("no_user"),
        ).where(live, sa.or_(no_agent, no_user, sessions.c.max_end_at < now))
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            (r, "agent_unavailable" if r.no_agent else "join_timeout" if r.no_user else "max_duration")
            for r in rows
        ]

    async def live_created_before(self, cutoff: dt.datetime) -> list[sa.Row]:
        """Live sessions (id, character, room name) created before `cutoff`, oldest first."""
        query = (
            sa.select(sessions.c.id, sessions.c.character, sessions.c.room_name)
            .where(sessions.c.status.in_(LIVE_STATUSES), sessions.c.created_at < cutoff)
            .order_by(sessions.c.created_at)
        )
        async with self._db.connect() as conn:
            return list((await conn.execute(query)).all())

    async def mark_user_joined(self, session_id: str) -> None:
        """Record when the user first joined a live session."""
        await self._db.write(_mark_first_joined, session_id, sessions.c.user_joined_at)

    async def mark_agent_joined(self, session_id: str) -> None:
        """Record when the agent first joined a live session."""
        await self._db.write(_mark_first_joined, session_id, sessions.c.agent_joined_at)

    async def by_room(self, room_name: str) -> sa.Row | None:
        """The session whose room is `room_name`, or None."""
        async with self._db.connect() as conn:
            query = sa.select(sessions).where(sessions.c.room_name == room_name)
            return (await conn.execute(query)).first()

    async def get(self, session_id: str) -> sa.Row | None:
        """One session record, or None."""
        async with self._db.connect() as conn:
            return (await conn.execute(sa.select(sessions).where(sessions.c.id == session_id))).first()


# Write transactions: each is a plain function of a sync Connection, run whole by
# `Database.write` (one thread hop on SQLite; `run_sync` on PostgreSQL).


def _lock(conn: sa.Connection, scope: str) -> None:
    # SQLite's BEGIN IMMEDIATE already holds the database's write lock.
    if not is_sqlite(conn):
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(scope))))


def _live_count(conn: sa.Connection) -> int:
    # Only the optional global cap counts: O(live sessions), under its own lock.
    query = sa.select(sa.func.count()).select_from(sessions).where(sessions.c.status.in_(LIVE_STATUSES))
    return conn.execute(query).scalar_one()


# Hot-path statements are built once and executed with parameters, so SQLAlchemy
# reuses their compiled form instead of building a statement per start.
_TAKE_SLOT = (
    slot_counts.update()
    .where(slot_counts.c.scope == sa.bindparam("b_scope"), slot_counts.c.live < sa.bindparam("b_limit"))
    .values(live=slot_counts.c.live + 1)
)
_INSERT_SESSION = sessions.insert()
_INSERT_STATUS_CHANGE = session_status_changes.insert()


def _take_slot(conn: sa.Connection, character: str, limit: int) -> bool:
    """Count one more live session for `character` if it is under `limit`.

    One conditional UPDATE: atomic in SQLite, and on PostgreSQL concurrent starts
    queue on the row lock and re-check the condition once the one ahead commits.
    """
    params = {"b_scope": character, "b_limit": limit}
    if conn.execute(_TAKE_SLOT, params).rowcount == 1:
        return True
    insert = sqlite_insert if is_sqlite(conn) else pg_insert
    # The character's first session: make its counter (a parallel start may win that), then try again.
    conn.execute(
        insert(slot_counts).values(scope=character, live=0).on_conflict_do_nothing(index_elements=["scope"])
    )
    return conn.execute(_TAKE_SLOT, params).rowcount == 1


def _find_replay(conn: sa.Connection, new: NewSession, since: dt.datetime) -> Replay | None:
    row = conn.execute(
        # Keys are server-wide: one sent for another character is a reuse, not a new key.
        sa.select(sessions).where(
            sessions.c.idempotency_key == new.idempotency_key,
            sessions.c.created_at >= since,
        )
    ).first()
    if row is None:
        return None
    return Replay(row, same_request=row.request_hash == new.request_hash)


def _grant_used(conn: sa.Connection, grant: UsedGrant) -> bool:
    query = sa.select(session_grants.c.jti).where(session_grants.c.jti == grant.jti)
    return conn.execute(query).first() is not None


def _use_grant(conn: sa.Connection, session_id: str, grant: UsedGrant) -> None:
    """Record `grant` as used, forgetting those that can no longer be presented."""
    conn.execute(session_grants.delete().where(session_grants.c.forget_after < utcnow()))
    if _grant_used(conn, grant):
        raise GrantUsed()
    conn.execute(
        session_grants.insert().values(jti=grant.jti, session_id=session_id, forget_after=grant.forget_after)
    )


def _reserve(
    conn: sa.Connection, new: NewSession, limit: int, global_limit: int | None, since: dt.datetime
) -> None:
    if new.idempotency_key:
        replay = _find_replay(conn, new, since)
        if replay:
            raise replay
        # A key older than the window is free again.
        conn.execute(
            sessions.update()
            .where(sessions.c.idempotency_key == new.idempotency_key)
            .values(idempotency_key=None)
        )
    if new.grant is not None:
        _use_grant(conn, new.id, new.grant)
    if global_limit is not None:
        _lock(conn, GLOBAL_SCOPE)
        if _live_count(conn) >= global_limit:
            raise SlotsFull(GLOBAL_SCOPE, global_limit)
    now = utcnow()
    conn.execute(
        _INSERT_SESSION,
        {
            "id": new.id,
            "character": new.character,
            "status": SessionStatus.PENDING,
            "status_reason": "room_created",
            "room_name": new.room_name,
            "participant_identity": new.participant_identity,
            "origin": new.origin,
            "origin_url": new.origin_url,
            "config": new.config,
            "idempotency_key": new.idempotency_key,
            "request_hash": new.request_hash,
            "created_at": now,
            "updated_at": now,
            "join_deadline": now + dt.timedelta(seconds=new.join_timeout_seconds),
            "max_end_at": now + dt.timedelta(seconds=new.max_duration_seconds),
            "agent_deadline": now + dt.timedelta(seconds=new.agent_join_timeout_seconds),
            "character_version": new.character_version,
        },
    )
    conn.execute(
        _INSERT_STATUS_CHANGE,
        {"session_id": new.id, "status": SessionStatus.PENDING, "reason": "room_created", "at": now},
    )
    # Last, so the character's counter row stays locked (PostgreSQL) only from here to
    # the commit; a full character rolls the inserts above back.
    if not _take_slot(conn, new.character, limit):
        raise SlotsFull(new.character, limit)


def _transition(
    conn: sa.Connection,
    session_id: str,
    status: SessionStatus,
    reason: str,
    from_statuses: tuple[SessionStatus, ...],
    usage: dict[str, Any] | None,
    webhook_url: str | None,
    analysis_wait: dt.timedelta,
) -> bool:
    now = utcnow()
    values: dict[str, Any] = {"status": status, "status_reason": reason, "updated_at": now}
    if status.final:
        values |= {"ended_at": now, "idempotency_key": None}
    if status == SessionStatus.ACTIVE:
        values["joined_at"] = now
    if usage is not None:
        values["usage"] = usage
    moved = conn.execute(
        sessions.update()
        .where(sessions.c.id == session_id, sessions.c.status.in_(from_statuses))
        .values(**values)
        .returning(sessions.c.character, sessions.c.character_version)
    ).first()
    if moved is None:
        return False
    if not status.live:
        # Every from-status that can reach here is live: give the slot back.
        conn.execute(
            slot_counts.update()
            .where(slot_counts.c.scope == moved.character)
            .values(live=slot_counts.c.live - 1)
        )
    conn.execute(
        session_status_changes.insert().values(session_id=session_id, status=status, reason=reason, at=now)
    )
    if status != SessionStatus.ENDED:
        return True
    analysed = moved.character_version is not None and bool(
        conn.execute(
            sa.select(character_versions.c.has_analysis).where(
                character_versions.c.id == moved.character_version
            )
        ).scalar()
    )
    if analysed:
        conn.execute(
            session_analyses.insert().values(
                new_analysis(
                    session_id, moved.character_version, trigger=AnalysisTrigger.SESSION_ENDED, now=now
                )
            )
        )
    if webhook_url:
        # With an analysis coming, the delivery waits for it (the analysis brings it
        # forward when it is stored), but no longer than `analysis_wait`.
        conn.execute(
            webhook_deliveries.insert().values(
                id="whd_" + secrets.token_hex(12),
                session_id=session_id,
                url=webhook_url,
                event="session.ended",
                status="pending",
                attempts=0,
                created_at=now,
                next_attempt_at=now + analysis_wait if analysed else now,
            )
        )
    return True


def new_analysis(
    session_id: str, version: str, *, trigger: AnalysisTrigger, now: dt.datetime
) -> dict[str, Any]:
    """The row of an analysis run queued now for `session_id` with character version `version`."""
    return {
        "id": "ana_" + secrets.token_hex(12),
        "session_id": session_id,
        "character_version": version,
        "trigger": trigger,
        "status": AnalysisStatus.PENDING,
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
    }


def _set_usage(conn: sa.Connection, session_id: str, usage: dict[str, Any]) -> None:
    conn.execute(sessions.update().where(sessions.c.id == session_id).values(usage=usage))


def _insert_events(conn: sa.Connection, rows: list[dict[str, Any]]) -> int:
    insert = sqlite_insert if is_sqlite(conn) else pg_insert
    statement = (
        insert(session_events)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["session_id", "event_id"])
        .returning(session_events.c.event_id)
    )
    return len(conn.execute(statement).all())


def _mark_first_joined(conn: sa.Connection, session_id: str, column: sa.Column) -> None:
    # `column` is `user_joined_at` or `agent_joined_at`: set once, while the session is live.
    conn.execute(
        sessions.update()
        .where(sessions.c.id == session_id, column.is_(None), sessions.c.status.in_(LIVE_STATUSES))
        .values({column: utcnow()})
    )
