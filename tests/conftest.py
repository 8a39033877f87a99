"""Shared fixtures: a database (SQLite file, or a throwaway PostgreSQL database), one
real livekit-server for the run, and the real token server built on them.

The LiveKit API stand-in (testkit/standins/livekit.py) is there for the tests that need
LiveKit to fail, stall or lose its rooms: they pass `livekit_standin_url` as the token
server's `livekit_api_url`.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.engine import make_url

from dev.livekit_server import LiveKitConfig, LiveKitServer
from testkit.livekit_server import API_KEY, API_SECRET, LiveKitRecord
from testkit.standins.livekit import LiveKitState, create_standin
from token_server import clock as token_server_clock
from token_server.app import create_app
from token_server.settings import Settings

# tests.markers: every test module must carry a category marker, or the run stops.
pytest_plugins = ["testkit.e2e.fixtures", "tests.api_fuzz_report", "tests.markers", "pytester"]

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TEST_CHARACTERS = FIXTURES / "characters"
GRANT_KEY = "server-key-3-long-enough-to-sign-grants"
REPO = Path(__file__).resolve().parent.parent
# `make test` starts the tests' own PostgreSQL (scripts/postgres.sh) and reaches it through
# its Unix socket, which the test run's network namespace shares with the host.
PG_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_ADMIN_URL", f"postgresql://postgres@/postgres?host={REPO}/.tools/postgres/socket&port=5432"
)


def pg_database_url(name: str, driver: str = "postgresql+asyncpg") -> str:
    """The URL of database `name` on the tests' PostgreSQL server."""
    return make_url(PG_ADMIN_URL).set(drivername=driver, database=name).render_as_string(hide_password=False)


async def _create_pg_database() -> tuple[str, str]:
    name = "oshara_test_" + secrets.token_hex(6)
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, pg_database_url(name)


async def _drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/oshara.db"
        return
    name, url = await _create_pg_database()
    try:
        yield url
    finally:
        await _drop_pg_database(name)


@pytest.fixture(scope="session")
def livekit_server(livekit_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveKitServer]:
    """One real livekit-server for the whole run, on loopback: these tests move no media."""
    config = LiveKitConfig.with_free_ports("127.0.0.1", api_key=API_KEY, api_secret=API_SECRET)
    server = LiveKitServer(config, tmp_path_factory.mktemp("livekit-server"), binary=livekit_binary).start()
    yield server
    server.stop()


@pytest.fixture
async def livekit(livekit_server: LiveKitServer) -> AsyncIterator[LiveKitRecord]:
    """What the real server holds: this test's rooms, their metadata and dispatches."""
    record = await LiveKitRecord.open(livekit_server.config.http_url)
    yield record
    await record.aclose()


@pytest.fixture
def livekit_state() -> LiveKitState:
    """What the LiveKit stand-in was asked; set `fail_status` and the like to make it fail."""
    return LiveKitState(api_key=API_KEY, api_secret=API_SECRET)


@pytest.fixture
async def livekit_standin_url(
    aiohttp_server: Callable[..., Awaitable[Any]], livekit_state: LiveKitState
) -> str:
    """The stand-in's base URL: a token server's `livekit_api_url` when LiveKit must misbehave."""
    server = await aiohttp_server(create_standin(livekit_state))
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
def make_settings(database_url: str, livekit_server: LiveKitServer) -> Callable[..., Settings]:
    """Settings for a test token server on the real livekit-server; keyword arguments override."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "livekit_url": "wss://livekit.test.invalid",
            # What browsers are told; the token server itself talks to livekit_api_url.
            "livekit_api_url": livekit_server.config.http_url,
            "livekit_api_key": API_KEY,
            "livekit_api_secret": API_SECRET,
            "database_url": database_url,
            "characters_dir": TEST_CHARACTERS,
            # The third is long enough to sign session grants with (HS256 wants 32 bytes).
            "token_server_api_keys": f"server-key-1,server-key-2,{GRANT_KEY}",
            # Tests sweep and reconcile when they mean to; a background pass in the middle of a
            # test would race with it. Tests of the loops themselves set short intervals.
            "sweep_interval_seconds": 3600,
            "reconcile_interval_seconds": 3600,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture
async def make_client(
    aiohttp_client: Callable[..., Awaitable[TestClient]], make_settings: Callable[..., Settings]
) -> Callable[..., Awaitable[TestClient]]:
    """Start the real token server on loopback and return a client for it."""

    async def make(**overrides: Any) -> TestClient:
        return await aiohttp_client(create_app(make_settings(**overrides)))

    return make


@pytest.fixture
async def client(make_client: Callable[..., Awaitable[TestClient]]) -> TestClient:
    """A token server with the default test settings."""
    return await make_client()


class SetClock(token_server_clock.Clock):
    """A token server clock that stands still until a test moves it."""

    def __init__(self, start: dt.datetime) -> None:
        self.at = start

    def now(self) -> dt.datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        """Move the clock `seconds` on."""
        self.at += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> SetClock:
    """The token server's clock, stopped at the current time; `clock.advance(s)` moves it."""
    fixed = SetClock(dt.datetime.now(dt.UTC))
    monkeypatch.setattr(token_server_clock, "CLOCK", fixed)
    return fixed
