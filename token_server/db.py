"""Database engine, tables and migrations (SQLite by default, PostgreSQL by URL).

Tables are SQLAlchemy Core; the schema is created and upgraded by the versioned
Alembic migrations in `token_server/migrations`, applied at start-up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from . import strict_json

T = TypeVar("T")

metadata = sa.MetaData()

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("character", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("status_reason", sa.String(200)),
    sa.Column("room_name", sa.String(128), nullable=False, unique=True),
    sa.Column("participant_identity", sa.String(128), nullable=False),
    sa.Column("origin", sa.String(2048)),
    sa.Column("origin_url", sa.String(2048)),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("idempotency_key", sa.String(255)),
    sa.Column("request_hash", sa.String(64)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("joined_at", sa.DateTime(timezone=True)),
    # When the user (not the agent) first joined; until then the join window applies.
    sa.Column("user_joined_at", sa.DateTime(timezone=True)),
    # When the agent first joined; until then the agent's deadline applies.
    sa.Column("agent_joined_at", sa.DateTime(timezone=True)),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("join_deadline", sa.DateTime(timezone=True), nullable=False),
    sa.Column("max_end_at", sa.DateTime(timezone=True), nullable=False),
    # By when the agent must join (LiveKit drops a dispatch no worker can take); NULL for
    # sessions recorded before migration 0006.
    sa.Column("agent_deadline", sa.DateTime(timezone=True)),
    sa.Column("usage", sa.JSON),
    # Which version of its character ran the session (`character_versions.id`); NULL for
    # sessions recorded before migration 0009.
    sa.Column("character_version", sa.String(64)),
    sa.Index("ix_sessions_character_status", "character", "status"),
    sa.Index("ix_sessions_character_version", "character_version", "created_at"),
    sa.Index("ix_sessions_status_created", "status", "created_at"),
    # Server-wide, so a key reused for another character collides (migration 0007).
    sa.Index("ux_sessions_idempotency_key", "idempotency_key", unique=True),
)

# Every version of every character the server has run: the content hash of its public
# definition (no secrets), stored once (migration 0009).
character_versions = sa.Table(
    "character_versions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("character", sa.String(64), nullable=False),
    sa.Column("definition", sa.JSON, nullable=False),
    sa.Column("has_analysis", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_character_versions_character", "character", "created_at"),
)

# The session grants that have been used, each until a while after it expires (migration 0008).
session_grants = sa.Table(
    "session_grants",
    metadata,
    sa.Column("jti", sa.String(128), primary_key=True),
    sa.Column("session_id", sa.String(64), nullable=False),
    sa.Column("forget_after", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_session_grants_forget_after", "forget_after"),
)

session_status_changes = sa.Table(
    "session_status_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("session_id", sa.String(64), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(200)),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_status_changes_session", "session_id", "id"),
)

# Live (pending or active) sessions per character, kept in step with `sessions` in the
# same transactions, so a start checks its limit with one conditional UPDATE.
slot_counts = sa.Table(
    "slot_counts",
    metadata,
    sa.Column("scope", sa.String(64), primary_key=True),
    sa.Column("live", sa.Integer, nullable=False),
)

session_events = sa.Table(
    "session_events",
    metadata,
    sa.Column(
        "seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("session_id", sa.String(64), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.UniqueConstraint("session_id", "event_id", name="ux_session_events_id"),
    sa.Index("ix_session_events_session_seq", "session_id", "seq"),
    sa.Index("ix_session_events_session_type_seq", "session_id", "type", "seq"),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("session_id", sa.String(64), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    sa.Column("url", sa.String(2048), nullable=False),
    # `session.ended`, or `session.analyzed` once an analysis arrives after it (migration 0009).
    sa.Column("event", sa.String(32), nullable=False, server_default="session.ended"),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    sa.Column("locked_until", sa.DateTime(timezone=True)),
    sa.Column("delivered_at", sa.DateTime(timezone=True)),
    sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    sa.Index("ix_webhook_deliveries_session", "session_id"),
)

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "delivery_id",
        sa.String(64),
        sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("error", sa.String(500)),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Index("ix_webhook_attempts_delivery", "delivery_id", "id"),
)

# Post-call analysis runs: one queued in the transaction that ends a session whose
# character version has an analysis, one more per re-run; each kept (migration 0009).
session_analyses = sa.Table(
    "session_analyses",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("session_id", sa.String(64), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    sa.Column("character_version", sa.String(64), nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    sa.Column("locked_until", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("model", sa.String(200)),
    sa.Column("result", sa.JSON),
    sa.Column("error", sa.String(500)),
    # The analysis LLM's own usage, apart from the call's (`sessions.usage`).
    sa.Column("usage", sa.JSON),
    sa.Index("ix_session_analyses_due", "status", "next_attempt_at"),
    sa.Index("ix_session_analyses_session", "session_id", "created_at"),
)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def is_sqlite(engine: AsyncEngine | AsyncConnection | sa.Connection) -> bool:
    """Whether the database is SQLite (which needs a whole-database write lock)."""
    return engine.dialect.name == "sqlite"


def _sqlite_pragmas(engine: sa.Engine, *, begin: str) -> None:
    """WAL, a busy timeout, and `begin` as the statement that opens each transaction.

    The writer's engine opens with `BEGIN IMMEDIATE`, so a write transaction holds the
    write lock from the start. The read engine opens with a plain (deferred) `BEGIN`:
    under WAL a transaction that only reads takes a snapshot and never the write lock,
    so a long read never holds up a write.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Open every transaction with `begin` (below): sqlite3's own BEGIN comes only
        # before a write, which would leave a read's statements outside any snapshot.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        conn.exec_driver_sql(begin)


def create_engine(url: str) -> AsyncEngine:
    """An async engine for `url`; SQLite gets `_sqlite_pragmas` and its directory made."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(
            url, pool_size=10, max_overflow=20, pool_pre_ping=True, json_serializer=strict_json.dumps
        )
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # Reads go through aiosqlite, one thread per connection. More than two threads
    # only queue on the GIL: at 16 concurrent reads, 15 connections gave a p99 near
    # 1 s and 2 gave 70 ms at the same throughput (bench/retrieval.py).
    engine = create_async_engine(url, connect_args={"timeout": 30}, pool_size=2, max_overflow=0)
    _sqlite_pragmas(engine.sync_engine, begin="BEGIN")
    return engine


class Database:
    """The engine, and how write transactions run.

    A write is a plain function of a sync `Connection`, run in one transaction by
    `write()`. On SQLite it runs whole on a single writer thread with the stdlib
    driver: one thread hop per transaction instead of one per statement, and the
    single thread is also what serialises SQLite's one-writer-at-a-time (so nobody
    waits in SQLite's busy handler, which sleeps in steps of up to 100 ms). On
    PostgreSQL it runs through `AsyncConnection.run_sync` on asyncpg.
    """

    def __init__(self, url: str) -> None:
        """Open engines for `url` (no connection is made yet)."""
        self.engine = create_engine(url)
        self._writer: ThreadPoolExecutor | None = None
        self._sync_engine: sa.Engine | None = None
        if is_sqlite(self.engine):
            sync_url = make_url(url).set(drivername="sqlite")
            self._sync_engine = sa.create_engine(
                sync_url,
                connect_args={"timeout": 30, "check_same_thread": False},
                json_serializer=strict_json.dumps,
            )
            _sqlite_pragmas(self._sync_engine, begin="BEGIN IMMEDIATE")
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(connection, *args)` in one write transaction and return its result."""
        if self._writer is None:
            async with self.engine.begin() as conn:
                return await conn.run_sync(fn, *args)
        return await asyncio.get_running_loop().run_in_executor(self._writer, self._run_sync, fn, args)

    def _run_sync(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        assert self._sync_engine is not None
        with self._sync_engine.begin() as conn:
            return fn(conn, *args)

    def connect(self):
        """A connection for reads only (on SQLite its transactions never take the write lock)."""
        return self.engine.connect()

    async def dispose(self) -> None:
        """Close every connection and the writer thread."""
        await self.engine.dispose()
        if self._writer is not None and self._sync_engine is not None:
            await asyncio.get_running_loop().run_in_executor(self._writer, self._sync_engine.dispose)
            self._writer.shutdown(wait=False)  # idle: the dispose above ran on it last


def _alembic_config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


async def migrate(db: Database) -> None:
    """Apply every pending migration, as one write transaction.

    On SQLite it runs on the writer thread, under the write lock; on PostgreSQL an
    advisory lock makes concurrent start-ups of several token servers apply them once.
    """
    await db.write(_upgrade)


def _upgrade(conn: sa.Connection) -> None:
    if not is_sqlite(conn):
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(7270135)"))
    # Alembic reads its scripts from disk synchronously. This runs once, before the
    # server accepts its first request, so nothing is waiting on the loop yet.
    command.upgrade(_alembic_config(conn), "head")
