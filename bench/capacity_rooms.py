"""Section 10: capacity with real rooms: N calls through livekit-server to one worker on one core.

The e2e stack (the real livekit-server, token server and a worker `python -m agent start`)
with the stand-ins of bench.voice_to_voice (STT 250 ms, LLM 400 ms, TTS 150 ms). The
worker and every job process it starts are pinned to one core (sched_setaffinity, as
`taskset` does); this process, livekit-server, the token server and the stand-ins to the
other. For each N, N sessions are started as a site starts them and joined by N Python
participants, each publishing espeak-ng speech (Opus through the SFU, so the job decodes
and encodes WebRTC audio) and listening to the agent: say a sentence, wait for the reply
to be heard, pause, again, for the measuring window.

- CPU: user + system time of the worker's whole process tree (worker, forkserver, job
  processes) over the window, as a share of one core. Baseline, same run: the same tree
  with no session over a window as long. Per session = (CPU(N) - baseline) / N.
- Turns: answered (first reply audio heard within 2.3 s of the end of speech), held or
  late (later: the end-of-turn model holds some espeak sentences for its 2.5 s max_delay),
  missed (nothing heard within 10 s). Late: answered turns more than 200 ms slower than the
  median with one session.
- Job PSS: psutil `memory_full_info().pss` of each job process (the forkserver's children).
- Real time: no missed turns, at most 5% late, and no "VAD inference is slower than
  realtime" warning from Silero in the worker's log during the window.

The worker's load function (`agent.worker.current_load`) is evaluated beside it for the
default settings: it counts sessions against two per core of `os.cpu_count()`.

It runs itself inside a network namespace of its own (scripts/netns.sh):
`.venv/bin/python -m bench.capacity_rooms [--quick]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench.common import ROOT, cli, first_after, pct, save, save_plot, table
from bench.voice_support import (
    LLM_FIRST_TOKEN,
    STT_CHUNK,
    STT_FINAL,
    TimedDeepgram,
    TimedLLM,
    VoiceServiceStandIn,
    script,
)
from bench.voice_to_voice import (
    SENTENCE,
    TRANSCRIPT,
    publish_microphone,
    serve_voice,
    wait_until_or_none,
)
from testkit.e2e.participant import User
from testkit.e2e.stack import ADDRESSES, Stack, run_stack
from testkit.waiting import wait_until

GOAL_CPU_PCT = 5.0
GOAL_SESSIONS = 15
GOAL_PSS_MB = 150.0
WORKER_CORE, OTHER_CORE = 0, 1
ANSWERED_WITHIN = 2.3
LATE_MS = 200.0
MB = 1024 * 1024
VAD_SLOW = "VAD inference is slower than realtime"
# no per-character limit in the way; webhooks to the stack's receiver as the e2e tests have them
CHARACTER_KEYS = """max_concurrent_sessions: 100
join_timeout_seconds: 60
webhook_url: {webhook_url}
webhook_secret: ${{E2E_WEBHOOK_SECRET}}"""


def worker_tree(stack: Stack) -> list[psutil.Process]:
    popen = stack.workers[0].popen
    assert popen is not None
    root = psutil.Process(popen.pid)
    return [root, *root.children(recursive=True)]


def pin(stack: Stack) -> None:
    for proc in worker_tree(stack):
        try:
            for thread in proc.threads():
                os.sched_setaffinity(thread.id, {WORKER_CORE})
        except (psutil.NoSuchProcess, ProcessLookupError):
            pass


def cpu_seconds(stack: Stack) -> dict[int, float]:
    out = {}
    for proc in worker_tree(stack):
        try:
            t = proc.cpu_times()
            out[proc.pid] = t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return out


def job_pss_mb(
    stack: Stack, busy: dict[int, float] | None = None, n: int = 0
) -> tuple[list[float], list[float]]:
    """PSS of the job processes (the children of the worker's forkserver, its grandchildren):
    the `n` that used the most CPU in `busy` (running a session), and the rest (idle)."""
    root, *_ = worker_tree(stack)
    jobs: dict[int, float] = {}
    for child in root.children():
        for job in child.children():
            with contextlib.suppress(psutil.NoSuchProcess):
                jobs[job.pid] = job.memory_full_info().pss / MB
    ranked = sorted(jobs, key=lambda pid: (busy or {}).get(pid, 0.0), reverse=True)
    return [jobs[p] for p in ranked[:n]], [jobs[p] for p in ranked[n:]]


def default_load_stops_at(cpus: int, threshold: float = 0.75) -> int:
    """Sessions at which `current_load` (sessions / 2 per core, defaults) reaches the threshold."""
    n = 0
    while n / max(2 * cpus, 1) < threshold:
        n += 1
    return n


async def one_user(stack: Stack) -> tuple[User, Any, str]:
    started = await stack.start_session(metadata={"user_id": "u-42", "user_name": "Ada"})
    user = await User(started["livekit_url"], started["token"]).join()
    mic = await publish_microphone(user.room)
    await wait_until(lambda: user.agent is not None, 60, "the agent to join the room")
    await wait_until(user.greeted, 60, "the agent to greet and listen")
    return user, mic, started["session_id"]


async def converse(user: User, mic: Any, until: float) -> list[dict[str, Any]]:
    turns = []
    await asyncio.sleep(random.uniform(0, 1.5))
    while time.monotonic() < until:
        t_end = await mic.say(SENTENCE)
        heard = await wait_until_or_none(lambda t=t_end: first_after(user.heard.loud_at, t), 10)
        turns.append(
            {"gap_ms": (heard - t_end) * 1000 if heard else None, "late_mic": max(mic.lateness or [0])}
        )
        if heard is None:
            continue
        await wait_until_or_none(
            lambda: (
                True
                if user.agent is not None and user.agent.attributes.get("lk.agent.state") == "listening"
                else None
            ),
            15,
        )
        await asyncio.sleep(random.uniform(0.3, 0.8))
    return turns


async def measure(stack: Stack, n: int, window: float) -> dict[str, Any]:
    users = await asyncio.gather(*(one_user(stack) for _ in range(n)))
    pin(stack)
    await asyncio.sleep(2.0)  # the last greetings finish
    log_before = len(stack.workers[0].log())
    cpu0, t0 = cpu_seconds(stack), time.monotonic()
    results = await asyncio.gather(*(converse(u, m, t0 + window) for u, m, _ in users))
    cpu1, t1 = cpu_seconds(stack), time.monotonic()
    busy = {pid: cpu1[pid] - cpu0.get(pid, cpu1[pid]) for pid in cpu1}
    pss, idle_pss = job_pss_mb(stack, busy, n)
    slow = stack.workers[0].log()[log_before:].count(VAD_SLOW)
    for user, mic, _ in users:
        await mic.aclose()
        await user.leave()
    # the slots come back before the next N
    for _, _, session_id in users:
        await wait_until(lambda s=session_id: _ended(stack, s), 60, "the session to end", interval=0.3)
    used = sum(cpu1[pid] - cpu0.get(pid, cpu1[pid]) for pid in cpu1)
    turns = [t for rs in results for t in rs]
    return {
        "sessions": n,
        "window_s": t1 - t0,
        "cpu_pct": 100 * used / (t1 - t0),
        "turns": turns,
        "vad_slow_warnings": slow,
        "job_pss_mb": pss,
        "idle_job_pss_mb": idle_pss,
    }


async def _ended(stack: Stack, session_id: str) -> bool:
    return (await stack.status(session_id))[0] == "ended"


async def idle_cpu(stack: Stack, window: float) -> float:
    pin(stack)
    cpu0, t0 = cpu_seconds(stack), time.monotonic()
    await asyncio.sleep(window)
    cpu1, t1 = cpu_seconds(stack), time.monotonic()
    return 100 * sum(cpu1[p] - cpu0.get(p, cpu1[p]) for p in cpu1) / (t1 - t0)


async def run(quick: bool) -> dict:
    if len(ADDRESSES) != 2:
        raise SystemExit(
            "run me inside the test namespace: scripts/netns.sh .venv/bin/python -m bench.capacity_rooms"
        )
    points, window = ((1, 3), 15.0) if quick else ((1, 2, 4, 6, 8, 10), 30.0)
    os.sched_setaffinity(0, {OTHER_CORE})  # this process and what it starts, but the worker
    transcripts = [TRANSCRIPT] * 10_000
    stt = TimedDeepgram(transcripts=transcripts, silence_to_end=STT_FINAL - 1e-6, chunk_seconds=STT_CHUNK)
    llm = TimedLLM(script=script, first_token_delay=LLM_FIRST_TOKEN)
    tts = VoiceServiceStandIn()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            serve_voice(tts) as tts_url,
            run_stack(
                Path(tmp),
                voice_url=tts_url,
                script=script,
                transcripts=[],
                deepgram=stt,
                openai=llm,
                character_keys=CHARACTER_KEYS,
                worker_env={
                    # every job process warm before the first call, as a sized deployment runs
                    "IDLE_PROCESSES": str(max(points) + 1),
                    "MAX_SESSIONS_PER_WORKER": "100",
                    "PROCESS_START_TIMEOUT_SECONDS": "300",
                },
            ) as stack,
        ):
            await asyncio.sleep(5.0)
            baseline = await idle_cpu(stack, window)
            _, idle_pss = job_pss_mb(stack)
            for n in points:
                rows.append(await measure(stack, n, window))
    return report(rows, baseline, idle_pss, quick)


def report(rows: list[dict[str, Any]], baseline: float, idle_pss: list[float], quick: bool) -> dict:
    one = [
        t["gap_ms"]
        for t in rows[0]["turns"]
        if t["gap_ms"] is not None and t["gap_ms"] < ANSWERED_WITHIN * 1000
    ]
    reference = statistics.median(one) if one else float("nan")
    table_rows = []
    for row in rows:
        turns = row["turns"]
        gaps = [t["gap_ms"] for t in turns if t["gap_ms"] is not None]
        answered = [g for g in gaps if g < ANSWERED_WITHIN * 1000]
        row["answered"] = len(answered)
        row["held_or_late"] = len(gaps) - len(answered)
        row["missed"] = len(turns) - len(gaps)
        row["late"] = sum(1 for g in answered if g > reference + LATE_MS)
        row["gap_p50_ms"] = statistics.median(answered) if answered else float("nan")
        row["gap_p95_ms"] = pct(answered, 95)
        row["per_session_pct"] = (row["cpu_pct"] - baseline) / row["sessions"]
        row["pss_median_mb"] = statistics.median(row["job_pss_mb"]) if row["job_pss_mb"] else float("nan")
        row["real_time"] = (
            row["missed"] == 0
            and row["late"] <= 0.05 * max(len(answered), 1)
            and row["vad_slow_warnings"] == 0
        )
        table_rows.append(
            [
                row["sessions"],
                row["cpu_pct"],
                baseline,
                row["per_session_pct"],
                len(turns),
                row["answered"],
                row["held_or_late"],
                row["missed"],
                row["late"],
                row["gap_p50_ms"],
                row["gap_p95_ms"],
                row["pss_median_mb"],
                row["vad_slow_warnings"],
                "yes" if row["real_time"] else "no",
            ]
        )
    print(
        table(
            [
                "sessions",
                "CPU % core",
                "idle %",
                "% per session",
                "turns",
                "answered",
                "held/late",
                "missed",
                "late",
                "gap p50",
                "p95",
                "busy job PSS MB",
                "VAD slow",
                "real time",
            ],
            table_rows,
        )
    )
    per_session = statistics.median([r["per_session_pct"] for r in rows])
    sustained = max((r["sessions"] for r in rows if r["real_time"]), default=0)
    extrapolated = int((100 - baseline) // per_session) if per_session > 0 else 0
    pss = statistics.median([p for r in rows for p in r["job_pss_mb"]] or [float("nan")])
    stops = default_load_stops_at(1)
    print(
        f"idle job processes: PSS {statistics.median(idle_pss) if idle_pss else float('nan'):.0f} MB each "
        f"({len(idle_pss)}); the worker's load function, default settings, pinned to one core, stops "
        f"taking jobs at {stops} sessions (2 per usable core, threshold 0.75), or once that core is 75% busy"
    )
    goals = {
        "cpu_per_session": {"pct": per_session, "goal": GOAL_CPU_PCT, "met": per_session <= GOAL_CPU_PCT},
        "sessions_per_core": {
            "sustained": sustained,
            "extrapolated_from_cpu": extrapolated,
            "goal": GOAL_SESSIONS,
            "met": sustained >= GOAL_SESSIONS,
        },
        "job_pss": {"mb": pss, "goal": GOAL_PSS_MB, "met": pss <= GOAL_PSS_MB},
    }
    print(
        f"goal: CPU per session <= {GOAL_CPU_PCT:.0f}% of a core: {per_session:.1f}% -> {'met' if goals['cpu_per_session']['met'] else 'NOT met'}"
    )
    print(
        f"goal: >= {GOAL_SESSIONS} sessions per core in real time: {sustained} sustained of {max(r['sessions'] for r in rows)} "
        f"tried (CPU alone would allow {extrapolated}) -> {'met' if goals['sessions_per_core']['met'] else 'NOT met'}"
    )
    print(
        f"goal: job PSS <= {GOAL_PSS_MB:.0f} MB: {pss:.0f} MB -> {'met' if goals['job_pss']['met'] else 'NOT met'}"
    )
    # the machine is shared: how busy it was says how far to trust the absolute numbers
    print(f"load average over the last 1 / 5 / 15 minutes: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    result = {
        "quick": quick,
        "load_average": os.getloadavg(),
        "baseline_idle_cpu_pct": baseline,
        "idle_job_pss_mb": idle_pss,
        "points": rows,
        "goals": goals,
        "default_load_stops_at_sessions": stops,
    }
    save("capacity_rooms", result)
    plot(rows, baseline)
    return result


def plot(rows: list[dict[str, Any]], baseline: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ns = [r["sessions"] for r in rows]
    ax.plot(ns, [r["cpu_pct"] for r in rows], marker="o", label="worker process tree")
    ax.axhline(baseline, color="grey", linestyle=":", label="baseline: no session")
    ax.plot(
        ns,
        [baseline + GOAL_CPU_PCT * n for n in ns],
        color="green",
        linestyle="--",
        label="goal: 5% per session",
    )
    ax.axhline(100, color="red", linestyle="--", label="one core")
    ax.set_xlabel("concurrent calls through livekit-server")
    ax.set_ylabel("CPU, % of one core")
    ax.set_title("Worker CPU against sessions (pinned to one core)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_plot(fig, "capacity_rooms")


def main() -> None:
    if len(ADDRESSES) != 2:
        netns = str(ROOT / "scripts" / "netns.sh")
        os.execv(netns, [netns, sys.executable, "-m", "bench.capacity_rooms", *sys.argv[1:]])  # noqa: S606
    cli(run, __doc__)


if __name__ == "__main__":
    main()
