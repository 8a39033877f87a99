"""Section 4: CPU per active session, memory of a job process, sessions one core sustains.

Memory: livekit-agents' own `ProcPool` (the one `AgentServer` runs) starts a real job
process through a forkserver that preloads what the worker preloads (the registered
plugins, `agent.worker.PRELOAD_MODULES` and livekit's `ipc._preload`), runs
`agent.worker.prewarm` in it (Silero VAD and the end-of-turn model) and unpickles
`agent.worker.entrypoint` (already imported in the forkserver). Once the pool reports it ready (idle,
waiting for a job) its RSS, USS and PSS are read with psutil. Baseline, same run: a job
process of the same forkserver whose prewarm and entrypoint do nothing.

CPU and capacity: N in-process sessions (the whole pipeline of bench.voice_support),
this process pinned to one core, the provider stand-ins in their own process on the
other core. Every simulated user says a sentence in real time, waits for the reply,
pauses, again. CPU is this process's user+system time over the window. Baseline, same
run: the same N microphones feeding the same audio into inputs that nobody processes.
Audio is fed as RoomIO hands it to a job: 24 kHz mono, 50 ms frames. A session count is
sustained in real time when the microphones keep their schedule (p99 lateness < 20 ms:
the event loop keeps up), the VAD's end-of-speech events (after its min_silence_duration)
come no more than 50 ms later (p95) than with the fewest sessions of the same run, and
every turn is answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

import psutil

from bench.common import cli, free_port, process, save, table, wait_http

GOAL_CPU_PCT = 3.0
GOAL_RSS_MB = 250.0
MAX_LATENESS_P99_MS = 20.0
MAX_VAD_LAG_GROWTH_MS = 50.0
MB = 1024 * 1024


# ---------------------------------------------------------------------- memory


def nothing_to_prewarm(proc: Any) -> None:
    """Baseline prewarm: the framework's job process, without our models."""


async def nothing_to_run(ctx: Any) -> None:
    """Baseline entrypoint (never called: the process stays idle)."""


async def job_process_memory(prewarm: Any, entrypoint: Any) -> dict[str, float]:
    """Start one idle job process the way AgentServer does and read its memory once ready."""
    import multiprocessing as mp

    from livekit.agents import ipc
    from livekit.agents.job import JobExecutorType

    ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    pool = ipc.proc_pool.ProcPool(
        initialize_process_fnc=prewarm,
        job_entrypoint_fnc=entrypoint,
        session_end_fnc=None,
        simulation_end_fnc=None,
        num_idle_processes=1,
        initialize_timeout=60.0,
        close_timeout=10.0,
        session_end_timeout=10.0,
        inference_executor=None,
        job_executor_type=JobExecutorType.PROCESS,
        mp_ctx=mp.get_context("forkserver"),
        memory_warn_mb=0,
        memory_limit_mb=0,
        http_proxy=None,
        loop=asyncio.get_running_loop(),
    )
    pool.on("process_ready", lambda proc: ready.done() or ready.set_result(proc))
    started = time.monotonic()
    await pool.start()
    proc = await asyncio.wait_for(ready, 90)
    ready_s = time.monotonic() - started
    await asyncio.sleep(1.0)  # let the process settle after initialising
    info = psutil.Process(proc.pid).memory_full_info()
    await pool.aclose()
    return {
        "rss_mb": info.rss / MB,
        "uss_mb": info.uss / MB,
        "pss_mb": info.pss / MB,
        "ready_s": ready_s,
    }


async def measure_memory() -> dict[str, dict[str, float]]:
    import multiprocessing as mp

    from livekit.agents.plugin import Plugin

    import agent.worker

    preload = [
        *dict.fromkeys([p.package for p in Plugin.registered_plugins] + agent.worker.PRELOAD_MODULES),
        "livekit.agents.ipc._preload",
        "livekit.agents.ipc._preload_freeze",  # AgentServer keeps it last
    ]
    mp.get_context("forkserver").set_forkserver_preload(preload)
    return {
        "baseline: empty prewarm": await job_process_memory(nothing_to_prewarm, nothing_to_run),
        "agent job process": await job_process_memory(agent.worker.prewarm, agent.worker.entrypoint),
    }


# ---------------------------------------------------------------------- CPU and capacity


def pin_to(core: int) -> None:
    """Pin every thread of this process (and the threads it starts later) to `core`."""
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(tid), {core})


def unpin() -> None:
    every = set(range(os.cpu_count() or 1))
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(tid), every)


class Window:
    """CPU seconds of this process and wall seconds between start() and stop()."""

    def __init__(self) -> None:
        self.proc = psutil.Process()

    def start(self) -> None:
        t = self.proc.cpu_times()
        self._cpu, self._wall = t.user + t.system, time.monotonic()

    def stop(self) -> float:
        t = self.proc.cpu_times()
        return (t.user + t.system - self._cpu) / (time.monotonic() - self._wall)


async def user_loop(vs: Any, stop: asyncio.Event, record: dict[str, list[float]], sentence: str) -> None:
    """One simulated user: say, wait for the reply to end, pause, again."""
    from bench.voice_support import POLL
    from testkit.waiting import within

    await asyncio.sleep(random.uniform(0.0, 2.5))  # users do not speak in lockstep
    while not stop.is_set():
        before = len(vs.speaker.first_frames)
        t_end = await vs.mic.say(sentence, pause_after=0.3)
        if await within(lambda n=before: len(vs.speaker.first_frames) > n, 8, interval=POLL):
            record["gaps"].append(vs.speaker.first_frames[before] - t_end)
        else:
            record["missed"].append(t_end)
        heard = next((t for t in vs.listening_at if t >= t_end), None)
        if heard is not None:
            # the VAD's end-of-speech event, after the silence it is configured to wait
            record["vad_lags"].append(heard - t_end - vs_min_silence(vs))
        await within(lambda: vs.conversation.session.agent_state == "listening", 8, interval=POLL)
        await asyncio.sleep(random.uniform(0.3, 0.8))


def vs_min_silence(vs: Any) -> float:
    return float(vs.conversation.models.vad.min_silence_duration)


async def mic_loop(mic: Any, stop: asyncio.Event, sentence: str) -> None:
    await asyncio.sleep(random.uniform(0.0, 2.5))
    while not stop.is_set():
        await mic.say(sentence, pause_after=0.3)
        await asyncio.sleep(1.2)  # about the time a session waits for and plays its reply


async def drain(inp: Any) -> None:
    with contextlib.suppress(StopAsyncIteration):
        async for _ in inp:
            pass


async def baseline_cpu(n: int, seconds: float) -> float:
    """N microphones feeding speech into inputs nobody processes."""
    from bench.voice_support import SENTENCES, TimedMicrophone
    from testkit.audio.audio_io import PushAudioInput

    inputs = [PushAudioInput() for _ in range(n)]
    mics = [TimedMicrophone(i) for i in inputs]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(drain(i)) for i in inputs]
    for m in mics:
        m.start()
    tasks += [asyncio.create_task(mic_loop(m, stop, SENTENCES[0])) for m in mics]
    await asyncio.sleep(1.0)
    w = Window()
    w.start()
    await asyncio.sleep(seconds)
    cpu = w.stop()
    stop.set()
    for t in tasks:
        t.cancel()
    for m in mics:
        await m.aclose()
    await asyncio.gather(*tasks, return_exceptions=True)
    return cpu


async def sessions_run(n: int, seconds: float, local: Any, urls: dict[str, str], tmp: Path) -> dict[str, Any]:
    from bench.voice_support import SENTENCES, character_configs, open_session, provider_settings

    config, dispatch, settings = character_configs(tmp, None)
    settings = provider_settings(settings, urls)
    rss_before = psutil.Process().memory_info().rss
    sessions = [await open_session(config, dispatch, settings, local) for _ in range(n)]
    record: dict[str, list[float]] = {"gaps": [], "missed": [], "vad_lags": []}
    stop = asyncio.Event()
    users = [asyncio.create_task(user_loop(vs, stop, record, SENTENCES[0])) for vs in sessions]
    await asyncio.sleep(3.0)  # every user has spoken once: connections up, models warm
    for vs in sessions:
        vs.mic.lateness.clear()
        vs.listening_at.clear()
    for values in record.values():
        values.clear()
    w = Window()
    w.start()
    await asyncio.sleep(seconds)
    cpu = w.stop()
    rss_with = psutil.Process().memory_info().rss
    stop.set()
    # the window is measured: a user in the middle of a turn need not finish it
    for u in users:
        u.cancel()
    await asyncio.gather(*users, return_exceptions=True)
    lateness = [x for vs in sessions for x in vs.mic.lateness]
    pushed = sum(vs.mic.pushed_seconds for vs in sessions)
    for vs in sessions:
        await vs.aclose()
    frames = pushed / sessions[0].mic.frame_seconds
    late_sorted = sorted(lateness)
    # frames pushed on time count as 0 ms late
    on_time = max(0, int(frames) - len(late_sorted))
    all_late = [0.0] * on_time + late_sorted
    p99_late = all_late[int(0.99 * (len(all_late) - 1))] * 1000 if all_late else 0.0
    gaps = sorted(record["gaps"])
    return {
        "sessions": n,
        "cpu_core_fraction": cpu,
        "rss_growth_mb_per_session": (rss_with - rss_before) / MB / n,
        "turns": len(gaps),
        "missed": len(record["missed"]),
        "gap_p50_ms": statistics.median(gaps) * 1000 if gaps else float("nan"),
        "gap_p95_ms": gaps[round(0.95 * (len(gaps) - 1))] * 1000 if gaps else float("nan"),
        "mic_lateness_p99_ms": p99_late,
        "mic_lateness_max_ms": max(lateness, default=0.0) * 1000,
        "vad_lag_p50_ms": statistics.median(record["vad_lags"]) * 1000
        if record["vad_lags"]
        else float("nan"),
        "vad_lag_p95_ms": sorted(record["vad_lags"])[round(0.95 * (len(record["vad_lags"]) - 1))] * 1000
        if record["vad_lags"]
        else float("nan"),
    }


async def measure_capacity(quick: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    import tempfile

    from livekit.agents import utils

    from agent.providers import load_local_models

    seconds = 5.0 if quick else 12.0
    sweep = [2] if quick else [1, 2, 4, 8, 12, 16]
    # the least busy core runs the sessions; the stand-ins get the other one
    per_core = psutil.cpu_percent(interval=0.5, percpu=True)
    core = min(range(len(per_core)), key=per_core.__getitem__)
    other = {c for c in range(len(per_core)) if c != core} or {core}
    ports = (free_port(), free_port(), free_port())
    urls = {
        "stt": f"ws://127.0.0.1:{ports[0]}/v1/listen",
        "llm": f"http://127.0.0.1:{ports[1]}/v1",
        "tts": f"http://127.0.0.1:{ports[2]}",
    }
    rows = []
    with process(["-m", "bench.voice_support", "--ports", *map(str, ports)]) as standins:
        psutil.Process(standins.pid).cpu_affinity(sorted(other))
        await wait_http(f"http://127.0.0.1:{ports[2]}/v1/speech")
        pin_to(core)
        try:
            local = load_local_models()
            with tempfile.TemporaryDirectory() as tmp:
                async with utils.http_context.open():
                    for n in sweep:
                        base = await baseline_cpu(n, seconds)
                        res = await sessions_run(n, seconds, local, urls, Path(tmp))
                        res["baseline_core_fraction"] = base
                        res["cpu_pct_per_session"] = (res["cpu_core_fraction"] - base) / n * 100
                        rows.append(res)
                        print(
                            f"  {n} sessions: {res['cpu_core_fraction'] * 100:.0f}% of a core "
                            f"(baseline {base * 100:.0f}%), {res['turns']} turns, {res['missed']} missed",
                            flush=True,
                        )
        finally:
            unpin()
    return rows, {"core": core, "seconds_per_point": seconds}


async def run(quick: bool) -> dict:
    load = os.getloadavg()
    memory = await measure_memory()
    rows, meta = await measure_capacity(quick)
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; now: {os.getloadavg()[0]:.2f}")
    print(
        table(
            ["job process (idle, after prewarm)", "RSS MB", "USS MB", "PSS MB", "ready s"],
            [[k, v["rss_mb"], v["uss_mb"], v["pss_mb"], v["ready_s"]] for k, v in memory.items()],
        )
    )
    single = rows[0]["vad_lag_p95_ms"]  # the fewest sessions of this run: the VAD's own lag
    for r in rows:
        r["sustained"] = (
            r["missed"] == 0
            and r["mic_lateness_p99_ms"] < MAX_LATENESS_P99_MS
            and r["vad_lag_p95_ms"] < single + MAX_VAD_LAG_GROWTH_MS
        )
    print(
        table(
            [
                "sessions",
                "CPU % core",
                "baseline %",
                "% per session",
                "RSS MB/session",
                "turns",
                "missed",
                "gap p50 ms",
                "gap p95 ms",
                "mic late p99 ms",
                "VAD lag p95 ms",
                "real time",
            ],
            [
                [
                    r["sessions"],
                    r["cpu_core_fraction"] * 100,
                    r["baseline_core_fraction"] * 100,
                    r["cpu_pct_per_session"],
                    r["rss_growth_mb_per_session"],
                    r["turns"],
                    r["missed"],
                    r["gap_p50_ms"],
                    r["gap_p95_ms"],
                    r["mic_lateness_p99_ms"],
                    r["vad_lag_p95_ms"],
                    "yes" if r["sustained"] else "NO",
                ]
                for r in rows
            ],
        )
    )
    job = memory["agent job process"]
    per_session = statistics.median(r["cpu_pct_per_session"] for r in rows)
    sustained = max((r["sessions"] for r in rows if r["sustained"]), default=0)
    goals = {
        "cpu_per_session": {"pct_of_core": per_session, "met": per_session < GOAL_CPU_PCT},
        "job_rss": {"rss_mb": job["rss_mb"], "met": job["rss_mb"] < GOAL_RSS_MB},
        "sessions_per_core": {"sustained": sustained, "largest_tried": max(r["sessions"] for r in rows)},
    }
    print(
        f"goal: CPU per active session < {GOAL_CPU_PCT:.0f}% of a core: {per_session:.1f}% -> "
        f"{'met' if goals['cpu_per_session']['met'] else 'NOT met'}"
    )
    print(
        f"goal: RSS of a job process after prewarm < {GOAL_RSS_MB:.0f} MB: {job['rss_mb']:.0f} MB "
        f"(USS {job['uss_mb']:.0f}, PSS {job['pss_mb']:.0f}) -> {'met' if goals['job_rss']['met'] else 'NOT met'}"
    )
    print(
        f"sessions one core sustained in real time: {sustained} (largest tried {goals['sessions_per_core']['largest_tried']})"
    )
    result = {"quick": quick, "memory": memory, "rows": rows, "goals": goals, "load_average": load, **meta}
    save("capacity", result)
    return result


def main() -> None:
    from bench.voice_support import quiet_logs

    quiet_logs()
    cli(run, __doc__)


if __name__ == "__main__":
    main()
