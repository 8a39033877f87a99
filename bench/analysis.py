"""Post-call analysis: the delay from a session's end to its stored analysis.

A real token server (`python -m token_server`, SQLite) analyses sessions against the
OpenAI-compatible stand-in, which answers every structured-output request after a
fixed latency. The delay is the server's own clock: the run's `finished_at` minus the
session's `ended_at`. The baseline is that fixed latency, the floor no analysis can
beat; what is above it is the queue's poll interval and our own work (reading the
session, building the request, validating and storing the reply).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import tempfile
from pathlib import Path

import aiohttp
from aiohttp import web

from bench.common import cli, free_port, process, save, table, wait_http
from bench.session_starts import SECRET
from contract.ingest_token import sign_ingest_token
from testkit.standins.openai_standin import OpenAIStandIn, TextReply

LATENCY = 0.25
CHARACTER = """slug: bench
name: Bench
system_prompt: You help.
allowed_origins: ["*"]
max_concurrent_sessions: 100000
form: {fields: [{name: email, type: email}]}
analysis:
  summary: true
  fields: [{name: email, type: email}, {name: plan, type: choice, choices: [basic, pro]}]
  success: [{name: resolved, question: "Was the question answered?"}]
"""
REPLY = (
    '{"summary": "The caller chose pro.", "fields": {"email": "ana@example.com", "plan": "pro"}, '
    '"success": {"resolved": {"answer": true, "reason": "They said so."}}}'
)


async def one_session(http: aiohttp.ClientSession, base: str) -> float:
    """Start and end a session; seconds from its end to its stored analysis."""
    async with http.post(f"{base}/v1/sessions", json={"agent": "bench"}) as resp:
        assert resp.status == 201, await resp.text()
        session_id = (await resp.json())["session_id"]
    token = sign_ingest_token("devkey", SECRET, session_id)
    events = [
        {"type": "transcript", "role": "agent", "text": "Which plan?"},
        {"type": "transcript", "role": "user", "text": "Pro, and my email is ana@example.com."},
        {"type": "form_updated", "field": "email", "value": "ana@example.com"},
        {"type": "session_ended", "reason": "done"},
    ]
    async with http.post(
        f"{base}/internal/v1/sessions/{session_id}/events",
        json={"events": events},
        headers={"Authorization": f"Bearer {token}"},
    ) as resp:
        assert resp.status == 200, await resp.text()
    key = {"Authorization": "Bearer bench-key"}
    for _ in range(3000):
        async with http.get(f"{base}/v1/sessions/{session_id}/analysis", headers=key) as resp:
            body = await resp.json()
        if body["analysis"] is not None:
            break
        await asyncio.sleep(0.01)
    else:
        raise TimeoutError(session_id)
    assert body["analysis"]["status"] == "succeeded", body["analysis"]["error"]
    async with http.get(f"{base}/v1/sessions/{session_id}", headers=key) as resp:
        ended = dt.datetime.fromisoformat((await resp.json())["ended_at"])
    return (dt.datetime.fromisoformat(body["analysis"]["finished_at"]) - ended).total_seconds()


async def measure(poll: float, sessions: int, llm_url: str, tmp: Path) -> list[float]:
    chars = tmp / f"characters-{poll}"
    chars.mkdir()
    (chars / "bench.yaml").write_text(CHARACTER)
    lk_port, port = free_port(), free_port()
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bench-{poll}.db",
        "CHARACTERS_DIR": str(chars),
        "LIVEKIT_API_URL": f"http://127.0.0.1:{lk_port}",
        "LIVEKIT_API_SECRET": SECRET,
        "TOKEN_SERVER_API_KEYS": "bench-key",
        "ANALYSIS_LLM_BASE_URL": llm_url,
        "ANALYSIS_POLL_SECONDS": str(poll),
    }
    livekit = [
        "-m",
        "testkit.standins.livekit",
        "--port",
        str(lk_port),
        "--api-secret",
        SECRET,
        "--no-record",
    ]
    with (
        process(livekit),
        process(["-m", "token_server", "--port", str(port), "--log-level", "WARNING"], env),
    ):
        base = f"http://127.0.0.1:{port}"
        await wait_http(f"http://127.0.0.1:{lk_port}/")
        await wait_http(base + "/healthz", within=120)
        async with aiohttp.ClientSession() as http:
            return [await one_session(http, base) for _ in range(sessions)]


async def run(quick: bool) -> dict:
    sessions = 3 if quick else 20
    llm = OpenAIStandIn(script=lambda body: TextReply(REPLY), first_token_delay=LATENCY)
    runner = web.AppRunner(llm.app())
    await runner.setup()
    llm_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", llm_port).start()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for poll in (2.0, 0.2):
                delays = sorted(await measure(poll, sessions, f"http://127.0.0.1:{llm_port}/v1", Path(tmp)))
                rows.append(
                    {
                        "poll_seconds": poll,
                        "sessions": sessions,
                        "p50_ms": statistics.median(delays) * 1000,
                        "max_ms": delays[-1] * 1000,
                        "mean_ms": statistics.fmean(delays) * 1000,
                    }
                )
    finally:
        await runner.cleanup()
    print(f"Session end → stored analysis, stand-in LLM latency {LATENCY * 1000:.0f} ms (SQLite, sequential)")
    print(
        table(
            [
                "ANALYSIS_POLL_SECONDS",
                "sessions",
                "p50 ms",
                "mean ms",
                "max ms",
                "baseline ms",
                "p50 above baseline",
            ],
            [
                [
                    r["poll_seconds"],
                    r["sessions"],
                    r["p50_ms"],
                    r["mean_ms"],
                    r["max_ms"],
                    LATENCY * 1000,
                    f"{r['p50_ms'] - LATENCY * 1000:.0f} ms",
                ]
                for r in rows
            ],
        )
    )
    result = {"llm_latency_ms": LATENCY * 1000, "rows": rows}
    save("analysis", result)
    return result


if __name__ == "__main__":
    cli(run, __doc__)
