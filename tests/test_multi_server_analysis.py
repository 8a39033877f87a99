"""Two token server processes on one PostgreSQL analyse each ended session exactly once; SIGHUP reloads."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import aiohttp
import pytest

from contract.ingest_token import sign_ingest_token
from testkit.livekit_server import API_KEY, API_SECRET
from testkit.standins.openai_standin import OpenAIStandIn
from tests.conftest import _create_pg_database, _drop_pg_database
from tests.test_multi_server import ROOT, free_port, wait_healthy
from tests.test_post_call_analysis import ANALYSIS_V2, ORIGIN, good_reply, write_character

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

KEY = {"Authorization": "Bearer server-key-1"}
SESSIONS = 8  # under the character's limit of 10 live sessions


async def test_two_processes_analyse_each_session_once_and_sighup_reloads(
    livekit_server, aiohttp_server, tmp_path
):
    # Slow enough that both servers' loops poll while a run is under way.
    llm = OpenAIStandIn(script=good_reply, first_token_delay=0.2)
    llm_server = await aiohttp_server(llm.app())
    characters = tmp_path / "characters"
    write_character(characters)
    name, database_url = await _create_pg_database()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LIVEKIT_API_URL": livekit_server.config.http_url,
        "LIVEKIT_API_KEY": API_KEY,
        "LIVEKIT_API_SECRET": API_SECRET,
        "CHARACTERS_DIR": str(characters),
        "TOKEN_SERVER_API_KEYS": "server-key-1",
        "TEST_WEBHOOK_SECRET": "whsec-test-0123456789abcdef",
        "ANALYSIS_LLM_BASE_URL": str(llm_server.make_url("/v1")),
        "ANALYSIS_POLL_SECONDS": "0.05",
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
            stderr=asyncio.subprocess.DEVNULL,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        async with aiohttp.ClientSession() as http:
            await asyncio.gather(*(wait_healthy(http, u, p) for u, p in zip(urls, procs, strict=True)))

            async def start_and_end(i: int) -> str:
                async with http.post(
                    urls[i % 2] + "/v1/sessions", json={"agent": "seller"}, headers=ORIGIN
                ) as r:
                    assert r.status == 201
                    sid = (await r.json())["session_id"]
                token = sign_ingest_token(API_KEY, API_SECRET, sid)
                events = [
                    {"type": "transcript", "role": "user", "text": "Pro, please."},
                    {"type": "session_ended", "reason": "done"},
                ]
                async with http.post(
                    urls[(i + 1) % 2] + f"/internal/v1/sessions/{sid}/events",
                    json={"events": events},
                    headers={"Authorization": f"Bearer {token}"},
                ) as r:
                    assert r.status == 200
                return sid

            sids = await asyncio.gather(*(start_and_end(i) for i in range(SESSIONS)))

            async def analysed(sid: str) -> dict:
                for _ in range(400):
                    async with http.get(urls[0] + f"/v1/sessions/{sid}/analysis", headers=KEY) as r:
                        body = await r.json()
                    if body["analysis"] is not None:
                        return body
                    await asyncio.sleep(0.05)
                raise TimeoutError(sid)

            bodies = await asyncio.gather(*(analysed(sid) for sid in sids))
            await asyncio.sleep(0.5)  # time for a second run, were one to start
            assert len(llm.requests) == SESSIONS
            for sid in sids:
                async with http.get(urls[1] + f"/v1/sessions/{sid}/analysis", headers=KEY) as r:
                    (run,) = (await r.json())["runs"]
                assert run["status"] == "succeeded" and run["attempts"] == 1
            assert {b["analysis"]["character_version"] for b in bodies} == {bodies[0]["character_version"]}

            # SIGHUP reloads the process it is sent to; the other keeps its set until told.
            async def current(url: str) -> str:
                async with http.get(url + "/v1/characters/seller/versions", headers=KEY) as r:
                    return (await r.json())["current"]

            before = await current(urls[0])
            write_character(characters, ANALYSIS_V2)
            procs[0].send_signal(signal.SIGHUP)
            for _ in range(100):
                if await current(urls[0]) != before:
                    break
                await asyncio.sleep(0.05)
            assert await current(urls[0]) != before
            assert await current(urls[1]) == before
            assert procs[0].returncode is None
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in procs:
            await proc.wait()
        await _drop_pg_database(name)
