"""Two token server processes sharing one PostgreSQL keep a concurrency limit exact."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from testkit.livekit_server import API_KEY, API_SECRET
from testkit.waiting import wait_until
from tests.conftest import TEST_CHARACTERS, _create_pg_database, _drop_pg_database

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_healthy(http: aiohttp.ClientSession, url: str, proc: asyncio.subprocess.Process) -> None:
    async def healthy() -> bool:
        if proc.returncode is not None:
            raise RuntimeError(f"token server exited with {proc.returncode}")
        try:
            async with http.get(url + "/healthz") as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False

    # a loaded machine takes a while to import and migrate; a broken server exits at once
    await wait_until(healthy, 90, f"{url} to become healthy", interval=0.1)


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
    ports = [free_port(), free_port()]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "token_server",
            "--port",
            str(port),
            "--log-level",
            "WARNING",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        async with aiohttp.ClientSession() as http:
            # Both start together, so both race to apply the migrations too.
            await asyncio.gather(*(wait_healthy(http, u, p) for u, p in zip(urls, procs, strict=True)))

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
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in procs:
            await proc.wait()
        await _drop_pg_database(name)
