"""Shared fixtures: a database (SQLite file, or a throwaway PostgreSQL database),
the LiveKit API stand-in, and the real token server built on them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.engine import make_url

from tests.standins.livekit import DEFAULT_API_KEY, DEFAULT_API_SECRET, LiveKitState, create_standin
from token_server.app import create_app
from token_server.settings import Settings

pytest_plugins = ["tests.e2e_support.fixtures"]

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TEST_CHARACTERS = FIXTURES / "characters"
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


@pytest.fixture
def livekit_state() -> LiveKitState:
    """What the LiveKit stand-in was asked; set `fail_status` to make it fail."""
    return LiveKitState()


@pytest.fixture
async def livekit_url(aiohttp_server: Callable[..., Awaitable[Any]], livekit_state: LiveKitState) -> str:
    """The stand-in's base URL (http; the settings' livekit_api_url)."""
    server = await aiohttp_server(create_standin(livekit_state))
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
def make_settings(database_url: str, livekit_url: str) -> Callable[..., Settings]:
    """Settings for a test token server; keyword arguments override."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "livekit_url": "wss://livekit.test.invalid",
            "livekit_api_url": livekit_url,
            "livekit_api_key": DEFAULT_API_KEY,
            "livekit_api_secret": DEFAULT_API_SECRET,
            "database_url": database_url,
            "characters_dir": TEST_CHARACTERS,
            "token_server_api_keys": "server-key-1,server-key-2",
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
