"""SQLite: reads never take the write lock, so a reader never holds up a session start."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from token_server.app import DB
from token_server.db import sessions

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

ALLOWED = {"Origin": "https://shop.example.com"}
COUNT = sa.select(sa.func.count()).select_from(sessions)


async def test_an_open_read_transaction_leaves_the_write_lock_free(make_client, database_url):
    # The background loops write once at start-up, then only hourly.
    client = await make_client(
        sweep_interval_seconds=3600, reconcile_interval_seconds=3600, webhook_poll_seconds=3600
    )
    path = make_url(database_url).database
    async with client.app[DB].connect() as reader:
        await reader.execute(COUNT)
        # Another connection takes the write lock while the read is open. It may wait
        # out one of those start-up writes, but a reader holding the lock would make
        # it wait until this block ends, so its 10 s would run out.
        other = sqlite3.connect(path, timeout=10, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        finally:
            other.close()


async def test_a_session_start_completes_while_a_read_transaction_is_open(make_client):
    client = await make_client()
    async with client.app[DB].connect() as reader:
        before = (await reader.execute(COUNT)).scalar_one()
        resp = await client.post("/v1/sessions", json={"agent": "helper"}, headers=ALLOWED)
        assert resp.status == 201, await resp.text()
        # The reader still sees its own snapshot: its transaction stayed open across the start.
        assert (await reader.execute(COUNT)).scalar_one() == before
    async with client.app[DB].connect() as fresh:
        assert (await fresh.execute(COUNT)).scalar_one() == before + 1
