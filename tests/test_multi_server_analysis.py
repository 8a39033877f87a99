"""Two token server processes on one PostgreSQL analyse each ended session exactly once; SIGHUP reloads."""

from __future__ import annotations

import asyncio
import os
import signal

import aiohttp
import pytest

from contract.ingest_token import sign_ingest_token
from testkit.livekit_server import API_KEY, API_SECRET
from testkit.standins.openai_standin import OpenAIStandIn
from testkit.token_servers import token_servers
from testkit.waiting import wait_until
from tests.conftest import _create_pg_database, _drop_pg_database
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
    try:
        async with token_servers(env) as servers, aiohttp.ClientSession() as http:
            urls = [server.url for server in servers]

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

            async def analysis(sid: str) -> dict:
                async with http.get(urls[0] + f"/v1/sessions/{sid}/analysis", headers=KEY) as r:
                    return await r.json()

            async def all_analysed() -> bool:
                found = [(await analysis(sid))["analysis"] for sid in sids]
                return all(run is not None for run in found)

            await wait_until(all_analysed, 20, "every session's analysis")
            bodies = [await analysis(sid) for sid in sids]
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
            servers[0].proc.send_signal(signal.SIGHUP)

            async def reloaded() -> bool:
                return await current(urls[0]) != before

            await wait_until(reloaded, 5, "the first server to reload on SIGHUP")
            assert await current(urls[1]) == before
            assert servers[0].proc.returncode is None
    finally:
        await _drop_pg_database(name)
