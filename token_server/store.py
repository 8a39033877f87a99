"""Session records in the database, and the concurrency slots they hold.

A session holds a slot while it is `pending` or `active`. Reserving one is a single
transaction that takes a lock (SQLite: the database write lock of `BEGIN
IMMEDIATE`; PostgreSQL: transaction-scoped advisory locks on the global scope and
the character), counts the live sessions and inserts the new one, so N parallel
starts against a limit of k create exactly k sessions, across processes too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .db import is_sqlite, session_status_changes, sessions

LIVE_STATUSES = ("pending", "active")
GLOBAL_SCOPE = "*"


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


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
    idempotency_key: str | None = None
    request_hash: str | None = None


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
    """Reads and writes session records."""

    def __init__(self, engine: AsyncEngine) -> None:
        """Use `engine`, already migrated."""
        self._engine = engine

    async def _lock(self, conn: AsyncConnection, scope: str) -> None:
        if not is_sqlite(conn):
            await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(scope))))

    async def _live_count(self, conn: AsyncConnection, character: str | None) -> int:
        query = sa.select(sa.func.count()).select_from(sessions).where(sessions.c.status.in_(LIVE_STATUSES))
        if character is not None:
            query = query.where(sessions.c.character == character)
        return (await conn.execute(query)).scalar_one()

    async def _find_replay(
        self, conn: AsyncConnection, character: str, key: str, request_hash: str | None, since: dt.datetime
    ) -> Replay | None:
        row = (
            await conn.execute(
                sa.select(sessions).where(
                    sessions.c.character == character,
                    sessions.c.idempotency_key == key,
                    sessions.c.created_at >= since,
                )
            )
        ).first()
        if row is None:
            return None
        return Replay(row, same_request=row.request_hash == request_hash)

    async def reserve(
        self,
        new: NewSession,
        *,
        limit: int,
        global_limit: int | None,
        idempotency_window: dt.timedelta,
    ) -> None:
        """Record `new` as `pending` if a slot is free.

        Raises:
            SlotsFull: the character's or the global limit is reached.
            Replay: `new.idempotency_key` was used within the window.
        """
        now = utcnow()
        since = now - idempotency_window
        try:
            async with self._engine.begin() as conn:
                if new.idempotency_key:
                    replay = await self._find_replay(
                        conn, new.character, new.idempotency_key, new.request_hash, since
                    )
                    if replay:
                        raise replay
                    # A key older than the window is free again.
                    await conn.execute(
                        sessions.update()
                        .where(
                            sessions.c.character == new.character,
                            sessions.c.idempotency_key == new.idempotency_key,
                        )
                        .values(idempotency_key=None)
                    )
                if global_limit is not None:
                    await self._lock(conn, GLOBAL_SCOPE)
                    if await self._live_count(conn, None) >= global_limit:
                        raise SlotsFull(GLOBAL_SCOPE, global_limit)
                await self._lock(conn, new.character)
                if await self._live_count(conn, new.character) >= limit:
                    raise SlotsFull(new.character, limit)
                await conn.execute(
                    sessions.insert().values(
                        id=new.id,
                        character=new.character,
                        status="pending",
                        status_reason="room_created",
                        room_name=new.room_name,
                        participant_identity=new.participant_identity,
                        origin=new.origin,
                        origin_url=new.origin_url,
                        config=new.config,
                        idempotency_key=new.idempotency_key,
                        request_hash=new.request_hash,
                        created_at=now,
                        updated_at=now,
                        join_deadline=now + dt.timedelta(seconds=new.join_timeout_seconds),
                        max_end_at=now + dt.timedelta(seconds=new.max_duration_seconds),
                    )
                )
                await conn.execute(
                    session_status_changes.insert().values(
                        session_id=new.id, status="pending", reason="room_created", at=now
                    )
                )
        except IntegrityError:
            # A parallel request with the same idempotency key committed first.
            if not new.idempotency_key:
                raise
            async with self._engine.connect() as conn:
                replay = await self._find_replay(
                    conn, new.character, new.idempotency_key, new.request_hash, since
                )
            if replay is None:
                raise
            raise replay from None

    async def transition(
        self, session_id: str, status: str, reason: str, *, from_statuses: tuple[str, ...]
    ) -> bool:
        """Move a session to `status` if it is in one of `from_statuses`.

        Returns whether it moved; leaving `pending`/`active` frees its slot. An
        ended or failed session's idempotency key is released, so a retry with
        the same key starts afresh.
        """
        now = utcnow()
        values: dict[str, Any] = {"status": status, "status_reason": reason, "updated_at": now}
        if status in ("ended", "failed"):
            values |= {"ended_at": now, "idempotency_key": None}
        if status == "active":
            values["joined_at"] = now
        async with self._engine.begin() as conn:
            result = await conn.execute(
                sessions.update()
                .where(sessions.c.id == session_id, sessions.c.status.in_(from_statuses))
                .values(**values)
            )
            if result.rowcount != 1:
                return False
            await conn.execute(
                session_status_changes.insert().values(
                    session_id=session_id, status=status, reason=reason, at=now
                )
            )
        return True

    async def get(self, session_id: str) -> sa.Row | None:
        """One session record, or None."""
        async with self._engine.connect() as conn:
            return (await conn.execute(sa.select(sessions).where(sessions.c.id == session_id))).first()
