"""Two token server processes sharing one PostgreSQL keep a concurrency limit exact."""

from __future__ import annotations

import asyncio
import os

import aiohttp
import pytest

from testkit.livekit_server import API_KEY, API_SECRET
from testkit.token_servers import token_servers
from tests.conftest import TEST_CHARACTERS, _create_pg_database, _drop_pg_database

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


async def test_two_processes_one_database_exact_limit(livekit_server, livekit):
    name, database_url = await _create_pg_database()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LIVEKIT_API_URL": livekit_server.config.http_url,
        "LIVEKIT_API_KEY": API_KEY,
        "LIVEKIT_API_SECRET": API_SECRET,
        "CHARACTERS_DIR": str(TEST_CHARACTERS),
    }
    try:
        # Both start together, so both race to apply the migrations too.
        async with token_servers(env) as servers, aiohttp.ClientSession() as http:
            urls = [server.url for server in servers]

            async def start(i: int) -> tuple[int, str | None]:
                async with http.post(
                    urls[i % 2] + "/v1/sessions",
                    json={"agent": "helper"},
                    headers={"Origin": "https://shop.example.com"},
                ) as resp:
                    return resp.status, (await resp.json()).get("room_name")

            started = await asyncio.gather(*(start(i) for i in range(40)))
        statuses = [status for status, _ in started]
        assert statuses.count(201) == 5
        assert statuses.count(429) == 35
        rooms = sorted(room for status, room in started if status == 201)
        assert sorted(await livekit.new_rooms()) == rooms
    finally:
        await _drop_pg_database(name)
