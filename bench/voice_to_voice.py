"""Section 9: voice to voice at the listener, through the real livekit-server.

The e2e stack (testkit.e2e: the real livekit-server v1.13.5, the token server, a
worker `python -m agent start`) with the provider stand-ins of fixed latency that
bench.turns uses: Deepgram's final 250 ms (stream time) after the last voiced audio, the
LLM's first token 400 ms after the request, the voice service's first byte 150 ms after
the request. A Python participant (`rtc.Room`) joins the session's room, publishes
espeak-ng speech at real-time pace in 20 ms frames (48 kHz) and listens to the agent.

Per turn, on this process' monotonic clock (the stand-ins run in this process too):

    t_end    the frame holding the last voiced sample was handed to the microphone track
    t_heard  the first agent audio frame that carries sound reached the participant
    gap      = t_heard - t_end
    baseline = max(W, STT + LLM) + TTS, W = max(the VAD's min silence, endpointing min_delay)
               from the character's `turn:` block: no turn commits earlier, and livekit starts the LLM on the STT
               final, so the LLM overlaps the wait (bench.turns explains it). 0.80 s here.
    overhead = gap - baseline, split three ways:
      endpointing  the turn was committed after the reply was ready: from the worker's own
                   metrics, max(0, (end_of_turn_delay - transcription_delay) - (final → LLM
                   request) - llm_ttft);
      our code     what the worker reports over the stand-ins' latencies: (llm_ttft - LLM)
                   + (tts_ttfb - TTS), plus the time from the STT final to the LLM request
                   (seen at the stand-ins) and from the LLM's first token to the TTS request;
      transport    the remainder: Opus encoding, the SFU, the jitter buffers, decoding, and
                   the frames and packets audio is buffered into on the way (RoomIO's input
                   frames, the Deepgram plugin's packets, the output's queue).

Beside it, the same run measures the transport alone: one participant publishes a tone
burst to another through the same livekit-server (one way, its onset sent → heard); a
turn crosses it twice (speech up, reply down).

It runs itself inside a network namespace of its own (scripts/netns.sh):
`.venv/bin/python -m bench.voice_to_voice [--quick]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web
from livekit import api, rtc

from bench.common import ROOT, cli, first_after, pct, save, save_plot, table
from bench.voice_support import (
    LLM_FIRST_TOKEN,
    STT_CHUNK,
    STT_FINAL,
    TTS_FIRST_BYTE,
    TimedDeepgram,
    TimedLLM,
    VoiceServiceStandIn,
    script,
    speech_end,
)
from contract.model import TurnConfig
from testkit.audio.speech import frames, silence, speak
from testkit.e2e.participant import User
from testkit.e2e.stack import ADDRESSES, API_KEY, API_SECRET, Stack, run_stack
from testkit.waiting import wait_until

GOAL_OVERHEAD_MS = 60.0
GOAL_OUR_CODE_MS = 20.0
SAMPLE_RATE = 48_000
FRAME_MS = 20
SENTENCE = "My order has not arrived yet."  # the end-of-turn model takes it as finished (bench.turns)
TRANSCRIPT = "My order has not arrived yet."
# Endpointing as the worker runs it: the character's `turn:` block, at its defaults here
_TURN = TurnConfig()
VAD_MIN_SILENCE = _TURN.min_silence_seconds
MIN_DELAY = _TURN.min_delay_seconds
MAX_DELAY = _TURN.max_delay_seconds


class RoomMicrophone:
    """Real-time 20 ms frames into a published track; silence between utterances.

    `play(pcm, mark)` returns the moment sample `mark` leaves the source's queue for the
    encoder (the queue's backlog counted, so a stall on this loop does not skew the stamp).
    """

    def __init__(self, source: rtc.AudioSource) -> None:
        self.source = source
        self.lateness: list[float] = []
        self._queue: asyncio.Queue[tuple[np.ndarray, int, asyncio.Future[float]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def play(self, pcm: np.ndarray, mark: int) -> float:
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        await self._queue.put((pcm, mark, done))
        return await done

    async def say(self, text: str, *, pause_after: float = 0.3) -> float:
        """Speak `text`; returns when its last voiced frame was captured."""
        speech = speak(text, SAMPLE_RATE)
        end = speech_end(speech, SAMPLE_RATE)
        return await self.play(np.concatenate([speech, silence(pause_after, SAMPLE_RATE)]), max(end - 1, 0))

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.source.aclose()

    async def _run(self) -> None:
        step = SAMPLE_RATE * FRAME_MS // 1000
        quiet = frames(silence(FRAME_MS / 1000, SAMPLE_RATE), SAMPLE_RATE, FRAME_MS)[0]
        next_at = time.monotonic()
        while True:
            try:
                pcm, mark, done = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                pcm, mark, done = None, -1, None
            chunk = frames(pcm, SAMPLE_RATE, FRAME_MS) if pcm is not None else [quiet]
            marked_at = 0.0
            for i, frame in enumerate(chunk):
                await self.source.capture_frame(frame)
                if i == mark // step:
                    # when the marked sample leaves the source's queue for the encoder: after
                    # what is queued ahead of this frame, at its place in the frame
                    ahead = self.source.queued_duration - FRAME_MS / 1000
                    marked_at = time.monotonic() + max(ahead, 0.0) + (mark % step) / SAMPLE_RATE
                next_at += FRAME_MS / 1000
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    self.lateness.append(-delay)
                    next_at = time.monotonic()  # no catching up: that would only queue audio
            if done is not None and not done.done():
                done.set_result(marked_at)


async def publish_microphone(room: rtc.Room) -> RoomMicrophone:
    source = rtc.AudioSource(SAMPLE_RATE, 1, queue_size_ms=200)
    track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
    options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    await room.local_participant.publish_track(track, options)
    mic = RoomMicrophone(source)
    mic.start()
    return mic


# ---------------------------------------------------------------------- stand-ins


@dataclass
class Standins:
    """The three providers, on this process' loop, stamping what they see."""

    stt: TimedDeepgram
    llm: TimedLLM
    tts: VoiceServiceStandIn
    tts_url: str = ""
    runners: list[web.AppRunner] = field(default_factory=list)


@contextlib.asynccontextmanager
async def serve_voice(tts: VoiceServiceStandIn) -> AsyncIterator[str]:
    runner = web.AppRunner(tts.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------------- transport alone


def _token(room: str, identity: str) -> str:
    grants = api.VideoGrants(room_join=True, room=room)
    return api.AccessToken(API_KEY, API_SECRET).with_identity(identity).with_grants(grants).to_jwt()


async def transport_one_way(stack: Stack, bursts: int) -> list[float]:
    """A tone burst's onset, sent by one participant → heard by another, through the same SFU."""
    url = stack.livekit.config.ws_url
    room = f"transport-{os.getpid()}"
    lk = stack.lkapi()
    await lk.room.create_room(api.CreateRoomRequest(name=room))  # the server creates none on join
    listener = await User(url, _token(room, "listener")).join()
    speaker = rtc.Room()
    await speaker.connect(url, _token(room, "speaker"))
    mic = await publish_microphone(speaker)
    t = np.arange(int(0.3 * SAMPLE_RATE)) / SAMPLE_RATE
    tone = (0.2 * np.sin(2 * np.pi * 220 * t) * 32767).astype(np.int16)
    out = []
    try:
        await asyncio.sleep(1.0)  # subscribed, and the jitter buffer settled on silence
        for _ in range(bursts + 1):
            sent = await mic.play(np.concatenate([tone, silence(0.5, SAMPLE_RATE)]), 0)
            ok = await wait_until_or_none(lambda s=sent: first_after(listener.heard.loud_at, s), 3)
            if ok is not None:
                out.append((ok - sent) * 1000)
        return out[1:]  # the first burst warms the path
    finally:
        await mic.aclose()
        await speaker.disconnect()
        await listener.leave()
        await lk.room.delete_room(api.DeleteRoomRequest(room=room))


async def wait_until_or_none(probe: Any, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (value := probe()) is not None:
            return value
        await asyncio.sleep(0.005)
    return None


# ---------------------------------------------------------------------- turns


async def run_turns(stack: Stack, standins: Standins, n: int) -> tuple[list[dict[str, Any]], str]:
    started, user = await stack.call()
    session_id = started["session_id"]
    mic = await publish_microphone(user.room)
    rows: list[dict[str, Any]] = []
    try:
        await wait_until(user.greeted, 30, "the agent to listen")
        await wait_until(lambda: standins.stt.connections, 30, "the agent to open its STT stream")
        await asyncio.sleep(0.5)
        # one warm-up turn, then turns until `n` were not held back by the end-of-turn model
        # (espeak through Opus: it holds many for max_delay, by design), at most 3n + 1
        i = answered = 0
        while i < 3 * n + 1 and answered < n + 1:
            turn_start = time.monotonic()
            t_end = await mic.say(SENTENCE)
            i += 1
            heard = await wait_until_or_none(lambda t=t_end: first_after(user.heard.loud_at, t), 10)
            if heard is None:
                rows.append({"turn": i, "missing": True, "t_start": turn_start, "t_end": t_end})
                continue
            rows.append({"turn": i, "t_start": turn_start, "t_end": t_end, "t_heard": heard})
            if heard - t_end < MAX_DELAY:
                answered += 1
            # the reply plays out, the agent listens again
            await wait_until(
                lambda: user.agent is not None and user.agent.attributes.get("lk.agent.state") == "listening",
                15,
                "the agent to listen again",
            )
            await asyncio.sleep(0.3)
        # the worker reports each reply's metrics once it is spoken; its ingest client batches
        await asyncio.sleep(2.0)
        metrics = [
            e for e in await stack.events(session_id, "metrics") if e.get("e2e_latency_ms") is not None
        ]
    finally:
        await mic.aclose()
        await user.leave()
    return attach(rows, standins, metrics), session_id


async def sdk_conversion_ms(bodies: list[dict[str, Any]]) -> list[float]:
    """CPU the OpenAI SDK's request conversion takes on this run's own requests, per request.

    `agent.openai_client` skips it; this is what it would cost on the job's event loop.
    """
    from openai._utils._transform import async_maybe_transform
    from openai.types.chat.completion_create_params import CompletionCreateParamsStreaming

    out = []
    for body in bodies:
        started = time.process_time()
        await async_maybe_transform(body, CompletionCreateParamsStreaming)
        out.append((time.process_time() - started) * 1000)
    return out


def _at(event: dict[str, Any]) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(event["at"].replace("Z", "+00:00")).timestamp()


def attach(
    rows: list[dict[str, Any]], standins: Standins, metrics: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each turn's stand-in stamps and the worker's metrics for its reply."""
    wall = time.time() - time.monotonic()
    wait = max(VAD_MIN_SILENCE, MIN_DELAY)
    baseline = max(wait, STT_FINAL + LLM_FIRST_TOKEN) + TTS_FIRST_BYTE
    done = [r for r in rows if not r.get("missing")]
    for row in done:
        nxt = rows[rows.index(row) + 1]["t_start"] if row is not rows[-1] else float("inf")
        t_end, heard = row["t_end"], row["t_heard"]
        final = first_after(standins.stt.final_at, t_end, heard)
        llm = first_after([t for t, _ in standins.llm.arrived], t_end, heard)
        tts_req = first_after(standins.tts.requests, t_end, heard)
        # the reply's metrics are reported when it has been spoken: before the next turn starts
        m = next((e for e in metrics if heard <= _at(e) - wall < nxt + 0.5), None)
        row.update(gap_ms=(heard - t_end) * 1000, baseline_ms=baseline * 1000)
        row["overhead_ms"] = row["gap_ms"] - row["baseline_ms"]
        if final is None or llm is None or tts_req is None or m is None:
            row["incomplete"] = True
            continue
        eot = m["end_of_turn_delay_ms"]
        row.update(
            end_of_turn_delay_ms=eot,
            held=eot is not None and eot >= (MAX_DELAY - 0.05) * 1000,
            # where the time went, on this process' clock
            up_to_final_ms=(final - t_end - STT_FINAL) * 1000,
            final_to_llm_ms=(llm - final) * 1000,
            first_token_to_tts_ms=(tts_req - llm - LLM_FIRST_TOKEN) * 1000,
            tts_to_heard_ms=(heard - tts_req - TTS_FIRST_BYTE) * 1000,
            worker_e2e_ms=m["e2e_latency_ms"],
            llm_ttft_ms=m["llm_ttft_ms"],
            tts_ttfb_ms=m["tts_ttfb_ms"],
            transcription_delay_ms=m["transcription_delay_ms"],
        )
        # the commit came after the reply was ready (worker clock: from its end of speech)
        ready = (m["transcription_delay_ms"] or 0) + row["final_to_llm_ms"] + (m["llm_ttft_ms"] or 0)
        row["endpointing_ms"] = max(0.0, (eot or 0) - ready)
        row["our_code_ms"] = (
            max(0.0, (m["llm_ttft_ms"] or 0) - LLM_FIRST_TOKEN * 1000)
            + max(0.0, (m["tts_ttfb_ms"] or 0) - TTS_FIRST_BYTE * 1000)
            + row["final_to_llm_ms"]
            + max(0.0, row["first_token_to_tts_ms"] - row["endpointing_ms"])
        )
        row["transport_ms"] = row["overhead_ms"] - row["endpointing_ms"] - row["our_code_ms"]
    return rows


# ---------------------------------------------------------------------- the section


async def run(quick: bool) -> dict:
    if len(ADDRESSES) != 2:
        raise SystemExit(
            "run me inside the test namespace: scripts/netns.sh .venv/bin/python -m bench.voice_to_voice"
        )
    n, bursts = (6, 10) if quick else (50, 30)
    standins = Standins(
        stt=TimedDeepgram(
            transcripts=[TRANSCRIPT] * (n + 5), silence_to_end=STT_FINAL - 1e-6, chunk_seconds=STT_CHUNK
        ),
        llm=TimedLLM(script=script, first_token_delay=LLM_FIRST_TOKEN),
        tts=VoiceServiceStandIn(),
    )
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            serve_voice(standins.tts) as tts_url,
            run_stack(
                Path(tmp),
                voice_url=tts_url,
                script=script,
                transcripts=[],
                deepgram=standins.stt,
                openai=standins.llm,
                # one warm job process is enough for one call, and starts in half the time
                worker_env={"IDLE_PROCESSES": "1"},
            ) as stack,
        ):
            transport = await transport_one_way(stack, bursts)
            rows, _ = await run_turns(stack, standins, n)
    conversion = await sdk_conversion_ms(stack.openai.requests)
    return report(rows, transport, conversion, quick)


def report(rows: list[dict[str, Any]], transport: list[float], conversion: list[float], quick: bool) -> dict:
    warmup, measured = rows[0], rows[1:]
    missing = [r for r in measured if r.get("missing")]
    held = [r for r in measured if r.get("held")]
    turns = [r for r in measured if not r.get("missing") and not r.get("held") and not r.get("incomplete")]
    incomplete = [r for r in measured if r.get("incomplete")]

    def stat(key: str, rs: list[dict[str, Any]] = turns) -> tuple[float, float]:
        vals = [r[key] for r in rs if r.get(key) is not None]
        return (statistics.median(vals) if vals else float("nan"), pct(vals, 95))

    wait = max(VAD_MIN_SILENCE, MIN_DELAY)
    print(
        f"endpointing wait W = max(turn: min_silence {VAD_MIN_SILENCE:.2f}, min_delay {MIN_DELAY:.2f}) s; "
        f"stand-ins: STT {STT_FINAL * 1000:.0f} ms, LLM {LLM_FIRST_TOKEN * 1000:.0f} ms, TTS "
        f"{TTS_FIRST_BYTE * 1000:.0f} ms; baseline = max(W, STT + LLM) + TTS = "
        f"{(max(wait, STT_FINAL + LLM_FIRST_TOKEN) + TTS_FIRST_BYTE) * 1000:.0f} ms"
    )
    t50, t95 = (statistics.median(transport), pct(transport, 95)) if transport else (float("nan"),) * 2
    keys = [
        ("end of speech sent → first agent audio heard", "gap_ms"),
        ("baseline: endpointing wait + stand-ins", "baseline_ms"),
        ("overhead above the baseline", "overhead_ms"),
        ("  endpointing (committed after the reply was ready)", "endpointing_ms"),
        ("  our code (worker's metrics and the stand-ins' stamps)", "our_code_ms"),
        ("  transport and buffering (the remainder)", "transport_ms"),
    ]
    print(table(["per turn", "p50 ms", "p95 ms"], [[label, *stat(key)] for label, key in keys]))
    print(
        f"baseline, same run: transport alone, one way, participant → SFU → participant: p50 {t50:.1f}, p95 {t95:.1f} ms ({len(transport)} bursts); a turn crosses it twice"
    )
    parts = [
        (
            "last voiced audio → STT final, minus 250 ms (uplink, RoomIO frames, Deepgram packets)",
            "up_to_final_ms",
        ),
        ("STT final → LLM request (ours)", "final_to_llm_ms"),
        ("LLM first token → TTS request (ours, or waiting for the commit)", "first_token_to_tts_ms"),
        ("TTS first byte → heard, minus 150 ms (ours, output queue, downlink)", "tts_to_heard_ms"),
        ("worker: llm_ttft", "llm_ttft_ms"),
        ("worker: tts_ttfb", "tts_ttfb_ms"),
        ("worker: end_of_turn_delay", "end_of_turn_delay_ms"),
        ("worker: transcription_delay", "transcription_delay_ms"),
        ("worker: e2e_latency (its end of speech → first frame out)", "worker_e2e_ms"),
    ]
    print(
        table(
            ["where the time goes (stand-ins' clock)", "p50 ms", "p95 ms"],
            [[label, *stat(key)] for label, key in parts],
        )
    )
    if conversion:
        print(
            f"the OpenAI SDK's request conversion on this run's {len(conversion)} requests: "
            f"p50 {statistics.median(conversion):.1f} ms of CPU each (agent.openai_client skips it)"
        )
    print(
        f"{len(turns)} turns measured; held by the end-of-turn model: {len(held)}; no reply: {len(missing)}; "
        f"stamps missing: {len(incomplete)}"
    )
    overhead, our = stat("overhead_ms"), stat("our_code_ms")
    goals = {
        "overhead": {
            "p50_ms": overhead[0],
            "goal_ms": GOAL_OVERHEAD_MS,
            "met": overhead[0] < GOAL_OVERHEAD_MS,
        },
        "our_code": {"p50_ms": our[0], "goal_ms": GOAL_OUR_CODE_MS, "met": our[0] < GOAL_OUR_CODE_MS},
    }
    for name, g in goals.items():
        print(
            f"goal: {name} p50 < {g['goal_ms']:.0f} ms: {g['p50_ms']:.1f} ms -> {'met' if g['met'] else 'NOT met'}"
        )
    # the machine is shared: how busy it was says how far to trust the absolute numbers
    print(f"load average over the last 1 / 5 / 15 minutes: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    result = {
        "quick": quick,
        "load_average": os.getloadavg(),
        "standins_ms": {
            "stt_final": STT_FINAL * 1000,
            "llm_first_token": LLM_FIRST_TOKEN * 1000,
            "tts_first_byte": TTS_FIRST_BYTE * 1000,
        },
        "endpointing_s": {"vad_min_silence": VAD_MIN_SILENCE, "min_delay": MIN_DELAY, "max_delay": MAX_DELAY},
        "summary": {key: dict(zip(("p50_ms", "p95_ms"), stat(key), strict=True)) for _, key in keys + parts},
        "transport_one_way": {"p50_ms": t50, "p95_ms": t95, "n": len(transport)},
        "sdk_request_conversion_ms": statistics.median(conversion) if conversion else None,
        "goals": goals,
        "held_by_eot_model": len(held),
        "missing": len(missing),
        "warmup_turn": warmup,
        "turns": measured,
    }
    save("voice_to_voice", result)
    plot(turns, transport)
    return result


def plot(turns: list[dict[str, Any]], transport: list[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist([r["overhead_ms"] for r in turns], bins=25, alpha=0.8, label="turn overhead above the baseline")
    ax.hist([r["our_code_ms"] for r in turns], bins=25, alpha=0.6, label="of which our code")
    if transport:
        ax.hist([2 * t for t in transport], bins=25, alpha=0.5, label="transport alone, twice one way")
    ax.axvline(GOAL_OVERHEAD_MS, color="red", linestyle="--", label="goal: overhead p50")
    ax.axvline(GOAL_OUR_CODE_MS, color="green", linestyle="--", label="goal: our code p50")
    ax.set_xlabel("ms")
    ax.set_ylabel("turns")
    ax.set_title("Voice to voice at the listener, above the stand-ins and endpointing")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_plot(fig, "voice_to_voice")


def main() -> None:
    if len(ADDRESSES) != 2:
        # media moves: run inside a network namespace of our own, like the e2e tests
        netns = str(ROOT / "scripts" / "netns.sh")
        os.execv(netns, [netns, sys.executable, "-m", "bench.voice_to_voice", *sys.argv[1:]])  # noqa: S606
    cli(run, __doc__)


if __name__ == "__main__":
    main()
