"""Section 1: session starts per second and latency, beside a bare aiohttp echo.

The token server, the LiveKit API stand-in and the echo baseline each run in their
own process; wrk (Debian's package) drives each at the same concurrency in the same
run. SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from bench.common import ROOT, cli, free_port, process, save, save_plot, table, wait_http

# The tests' own cluster (scripts/postgres.sh, which `make bench` runs), or TEST_POSTGRES_ADMIN_URL.
PG_ADMIN = os.environ.get(
    "TEST_POSTGRES_ADMIN_URL", f"postgresql://postgres@/postgres?host={ROOT}/.tools/postgres/socket&port=5432"
)
SECRET = "bench-secret-long-enough-for-hs256-signing"
GOAL_RPS, GOAL_P99_MS = 2000.0, 25.0
CHARACTER = """slug: bench
name: Bench
system_prompt: You help {{user_name|someone}}.
greeting: Hi {{user_name}}!
allowed_origins: ["*"]
max_concurrent_sessions: 100000
"""


def wrk(url: str, connections: int, seconds: int, *, script: str | None = None) -> dict[str, float]:
    """Drive `url` with wrk; `script` defaults to POSTing a session request."""
    out = subprocess.run(
        [
            "wrk",
            f"-t{min(2, connections)}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            script or str(ROOT / "bench" / "post.lua"),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"STATS p50=(\d+) p90=(\d+) p99=(\d+) rps=([\d.]+) requests=(\d+) errors=(\d+)", out)
    if not match:
        raise RuntimeError(f"wrk printed no STATS line:\n{out}")
    p50, p90, p99, rps, requests, errors = match.groups()
    return {
        "p50_ms": int(p50) / 1000,
        "p90_ms": int(p90) / 1000,
        "p99_ms": int(p99) / 1000,
        "rps": float(rps),
        "requests": int(requests),
        "errors": int(errors),
    }


async def pg_database() -> tuple[str, str]:
    name = "oshara_bench_" + secrets.token_hex(4)
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return name, make_url(PG_ADMIN).set(drivername="postgresql+asyncpg", database=name).render_as_string(
        hide_password=False
    )


async def drop_pg(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


async def measure(url: str, health: str, sweep: list[int], seconds: int) -> list[dict]:
    await wait_http(health)
    wrk(url, 16, 1)  # warm-up: imports, connection pools, SQLite page cache
    return [{"connections": c, **wrk(url, c, seconds)} for c in sweep]


async def run(quick: bool) -> dict:
    if shutil.which("wrk") is None:
        raise SystemExit("bench needs wrk: apt-get install wrk")
    seconds = 2 if quick else 8
    sweep = [64] if quick else [1, 8, 32, 64, 128]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        chars = Path(tmp) / "characters"
        chars.mkdir()
        (chars / "bench.yaml").write_text(CHARACTER)
        lk_port = free_port()
        with process(
            ["-m", "testkit.standins.livekit", "--port", str(lk_port), "--api-secret", SECRET, "--no-record"]
        ):
            echo_port = free_port()
            with process(["-m", "bench.echo_server", "--port", str(echo_port)]):
                base = f"http://127.0.0.1:{echo_port}"
                for r in await measure(base + "/v1/sessions", base + "/", sweep, seconds):
                    rows.append({"target": "aiohttp echo (baseline)", "database": "-", **r})
            pg_name, pg_url = await pg_database()
            try:
                for db, url in (("sqlite", f"sqlite+aiosqlite:///{tmp}/bench.db"), ("postgresql", pg_url)):
                    port = free_port()
                    env = {
                        "DATABASE_URL": url,
                        "CHARACTERS_DIR": str(chars),
                        "LIVEKIT_API_URL": f"http://127.0.0.1:{lk_port}",
                        "LIVEKIT_API_SECRET": SECRET,
                    }
                    with process(["-m", "token_server", "--port", str(port), "--log-level", "WARNING"], env):
                        base = f"http://127.0.0.1:{port}"
                        for r in await measure(base + "/v1/sessions", base + "/healthz", sweep, seconds):
                            rows.append({"target": "POST /v1/sessions", "database": db, **r})
            finally:
                await drop_pg(pg_name)

    echo = {r["connections"]: r for r in rows if r["database"] == "-"}
    for r in rows:
        r["ratio_to_echo"] = (
            r["rps"] / echo[r["connections"]]["rps"] if echo[r["connections"]]["rps"] else 0.0
        )
    print(
        table(
            ["target", "db", "conns", "req/s", "p50 ms", "p90 ms", "p99 ms", "errors", "x echo"],
            [
                [
                    r["target"],
                    r["database"],
                    r["connections"],
                    r["rps"],
                    r["p50_ms"],
                    r["p90_ms"],
                    r["p99_ms"],
                    r["errors"],
                    f"{r['ratio_to_echo']:.2f}",
                ]
                for r in rows
            ],
        )
    )
    goals = {}
    for db in ("sqlite", "postgresql"):
        at64 = next(r for r in rows if r["database"] == db and r["connections"] == 64)
        goals[db] = {
            "starts_per_second": at64["rps"],
            "p99_ms": at64["p99_ms"],
            "met": at64["rps"] >= GOAL_RPS and at64["p99_ms"] < GOAL_P99_MS and at64["errors"] == 0,
        }
        print(
            f"goal ({db}, 64 connections): >= {GOAL_RPS:.0f} starts/s with p99 < {GOAL_P99_MS:.0f} ms: "
            f"{at64['rps']:.0f}/s, p99 {at64['p99_ms']:.1f} ms -> {'met' if goals[db]['met'] else 'NOT met'}"
        )
    result = {"rows": rows, "goals": goals, "seconds_per_point": seconds}
    save("session_starts", result)
    plot(rows)
    return result


def plot(rows: list[dict]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    for label in sorted({(r["target"], r["database"]) for r in rows}):
        points = [(r["connections"], r["rps"]) for r in rows if (r["target"], r["database"]) == label]
        if len(points) > 1:
            ax.plot(*zip(*points, strict=True), marker="o", label=f"{label[0]} {label[1]}".replace(" -", ""))
    if ax.lines:
        ax.axhline(GOAL_RPS, color="grey", linestyle="--", linewidth=1, label=f"goal {GOAL_RPS:.0f}/s")
        ax.set_yscale("log")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent connections")
        ax.set_ylabel("requests per second")
        ax.set_title("Session starts against concurrency")
        ax.legend()
        fig.tight_layout()
        save_plot(fig, "session_starts")


def main() -> None:
    cli(run, __doc__)


if __name__ == "__main__":
    main()
