"""Session retrieval: log pages of a session holding 10,000 events.

Each page is measured beside a bare aiohttp handler serving a JSON body of the same
size, so the table shows what the database and the record building add.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import aiohttp

from bench.common import cli, free_port, process, save, table, wait_http
from bench.session_starts import CHARACTER, SECRET, wrk
from contract.ingest_token import sign_ingest_token

EVENTS = 10_000


async def populate(base: str) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{base}/v1/sessions", json={"agent": "bench", "metadata": {"user_name": "Dana"}}
        ) as resp:
            assert resp.status == 201, await resp.text()
            session_id = (await resp.json())["session_id"]
        token = sign_ingest_token("devkey", SECRET, session_id)
        for batch in range(EVENTS // 500):
            events = [
                {
                    "id": f"{batch:03d}-{i:03d}",
                    "type": "transcript",
                    "role": "user" if i % 2 else "agent",
                    "text": f"utterance {batch}-{i}: a sentence of ordinary length said in the call.",
                }
                for i in range(500)
            ]
            async with http.post(
                f"{base}/internal/v1/sessions/{session_id}/events",
                json={"events": events},
                headers={"Authorization": f"Bearer {token}"},
            ) as resp:
                assert resp.status == 200, await resp.text()
    return session_id


async def cursor_at(base: str, session_id: str, skip: int) -> str:
    """The cursor after the first `skip` events, walking pages of 1000."""
    cursor = ""
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer bench-key"}) as http:
        for _ in range(skip // 1000):
            url = f"{base}/v1/sessions/{session_id}/logs?limit=1000" + (f"&cursor={cursor}" if cursor else "")
            async with http.get(url) as resp:
                cursor = (await resp.json())["next_cursor"]
    return cursor


async def page_bytes(url: str) -> int:
    async with (
        aiohttp.ClientSession(headers={"Authorization": "Bearer bench-key"}) as http,
        http.get(url) as resp,
    ):
        return len(await resp.read())


async def run(quick: bool) -> dict:
    seconds = 2 if quick else 6
    connections = 16
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        chars = Path(tmp) / "characters"
        chars.mkdir()
        (chars / "bench.yaml").write_text(CHARACTER)
        lk_port, port, echo_port = free_port(), free_port(), free_port()
        env = {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bench.db",
            "CHARACTERS_DIR": str(chars),
            "LIVEKIT_API_URL": f"http://127.0.0.1:{lk_port}",
            "LIVEKIT_API_SECRET": SECRET,
            "TOKEN_SERVER_API_KEYS": "bench-key",
        }
        with (
            process(
                [
                    "-m",
                    "testkit.standins.livekit",
                    "--port",
                    str(lk_port),
                    "--api-secret",
                    SECRET,
                    "--no-record",
                ]
            ),
            process(["-m", "token_server", "--port", str(port), "--log-level", "WARNING"], env),
            process(["-m", "bench.echo_server", "--port", str(echo_port)]),
        ):
            base, echo = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{echo_port}"
            await wait_http(f"http://127.0.0.1:{lk_port}/")
            await wait_http(base + "/healthz")
            await wait_http(echo + "/v1/blob")
            session_id = await populate(base)
            middle = await cursor_at(base, session_id, EVENTS // 2)
            pages = {
                "first 100": f"{base}/v1/sessions/{session_id}/logs?limit=100",
                "100 from the middle": f"{base}/v1/sessions/{session_id}/logs?limit=100&cursor={middle}",
                "first 1000": f"{base}/v1/sessions/{session_id}/logs?limit=1000",
                "summary": f"{base}/v1/sessions/{session_id}",
            }
            if quick:
                pages = {k: pages[k] for k in ("100 from the middle", "summary")}
            get_lua = str(Path(__file__).with_name("get.lua"))
            for name, url in pages.items():
                size = await page_bytes(url)
                ours = wrk(url, connections, seconds, script=get_lua)
                floor = wrk(f"{echo}/v1/blob?bytes={size}", connections, seconds, script=get_lua)
                rows.append({"page": name, "bytes": size, "ours": ours, "baseline": floor})
    print(f"GET pages of a session with {EVENTS} events, {connections} connections (SQLite)")
    print(
        table(
            ["page", "bytes", "req/s", "p50 ms", "p99 ms", "baseline req/s", "baseline p99 ms", "x baseline"],
            [
                [
                    r["page"],
                    r["bytes"],
                    r["ours"]["rps"],
                    r["ours"]["p50_ms"],
                    r["ours"]["p99_ms"],
                    r["baseline"]["rps"],
                    r["baseline"]["p99_ms"],
                    f"{r['ours']['rps'] / r['baseline']['rps']:.2f}",
                ]
                for r in rows
            ],
        )
    )
    result = {"events": EVENTS, "connections": connections, "rows": rows}
    save("retrieval", result)
    return result


def main() -> None:
    cli(run, __doc__)


if __name__ == "__main__":
    main()
