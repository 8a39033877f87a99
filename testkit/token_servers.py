"""Token servers as their own processes (`python -m token_server`), for the multi-server tests."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from dev.livekit_server import free_port
from testkit.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class TokenServerProcess:
    url: str
    proc: asyncio.subprocess.Process


async def wait_healthy(http: aiohttp.ClientSession, server: TokenServerProcess) -> None:
    async def healthy() -> bool:
        if server.proc.returncode is not None:
            raise RuntimeError(f"token server exited with {server.proc.returncode}")
        try:
            async with http.get(server.url + "/healthz") as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False

    # a loaded machine takes a while to import and migrate; a broken server exits at once
    await wait_until(healthy, 90, f"{server.url} to become healthy", interval=0.1)


@asynccontextmanager
async def token_servers(env: dict[str, str], count: int = 2) -> AsyncIterator[list[TokenServerProcess]]:
    """`count` token servers started together with `env` (so they race to migrate), healthy."""
    servers = []
    try:
        for _ in range(count):
            port = free_port("127.0.0.1")
            proc = await asyncio.create_subprocess_exec(
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
                stderr=asyncio.subprocess.DEVNULL,
            )
            servers.append(TokenServerProcess(f"http://127.0.0.1:{port}", proc))
        async with aiohttp.ClientSession() as http:
            await asyncio.gather(*(wait_healthy(http, s) for s in servers))
        yield servers
    finally:
        for server in servers:
            if server.proc.returncode is None:
                server.proc.terminate()
        for server in servers:
            await server.proc.wait()
