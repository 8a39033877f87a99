"""The voice pipeline in-process, with stand-ins of fixed latency and timestamps everywhere.

Used by bench.turns (turn latency, tool round trip, greeting) and bench.capacity.
Everything real that runs in a worker's job runs here: `agent.conversation`, the
Deepgram and OpenAI plugins, our Chatterbox plugin, Silero VAD and the local
end-of-turn model, MCP tools against a real MCP server. Only the providers stand
in, on loopback, with fixed latencies:

- STT: the tests' Deepgram stand-in, sending its final `STT_FINAL` seconds (stream
  time) after the last voiced 10 ms chunk;
- LLM: the tests' chat-completions stand-in, first token `LLM_FIRST_TOKEN` after
  the request, the rest of the reply at once;
- TTS: a voice-service stand-in (`POST /v1/speech`, as voice_service.service speaks it)
  answering with PCM `TTS_FIRST_BYTE` after the request.

All timestamps are `time.monotonic()` (CLOCK_MONOTONIC, the same in every process).

    python -m bench.voice_support --ports STT LLM TTS   # the stand-ins alone (bench.capacity)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web
from livekit import rtc
from pydantic import SecretStr

from agent.conversation import Conversation, SessionModels, start_conversation
from agent.providers import LocalModels, build_llm, build_stt, build_tts, session_vad
from agent.settings import Settings
from agent.worker import console_session
from contract.session_config import DispatchConfig, SessionConfig
from testkit.audio.audio_io import PushAudioInput, RecordingAudioOutput
from testkit.audio.speech import frames, silence, speak
from testkit.standins.deepgram_standin import DeepgramStandIn
from testkit.standins.openai_standin import (
    OpenAIStandIn,
    TextReply,
    ToolCallReply,
    last_user_text,
    trailing_tool_results,
)

STT_FINAL = 0.250
LLM_FIRST_TOKEN = 0.400
TTS_FIRST_BYTE = 0.150
STT_CHUNK = 0.010
VOICED_RMS = 300.0  # the Deepgram stand-in's threshold, on the same 10 ms windows
# what RoomIO hands a job by default (livekit.agents.voice.room_io: 24 kHz mono, 50 ms frames)
SAMPLE_RATE = 24_000
FRAME_MS = 50
REPLY = "Your order A123 shipped yesterday."
# The local end-of-turn model (audio) judges this espeak sentence finished every time; many
# others ("Where is my order?") it holds for max_delay, see the report of bench.turns.
SENTENCES = ("My order has not arrived yet.",)

CHARACTER = """slug: {slug}
name: Bench
language: en-US
system_prompt: You are Sam, a support agent. Keep answers short.
greeting: Hi, I'm Sam from support. How can I help?
allowed_origins: ["*"]
llm: {{model: gpt-4o-mini, temperature: 0.2}}
"""
MCP_PART = """mcp_servers:
  - name: orders
    url: {mcp_url}
    allowed_tools: [lookup_order]
    timeout: 10
"""


def script(body: dict[str, Any]) -> TextReply | ToolCallReply:
    """The LLM: a transcript with "order" in it asks for one lookup; every answer is `REPLY`."""
    if trailing_tool_results(body):
        return TextReply(REPLY)
    if "lookup" in last_user_text(body).lower():
        return ToolCallReply([("lookup_order", {"order_id": "A123"})])
    return TextReply(REPLY)


# ---------------------------------------------------------------------- stand-ins


@dataclass
class TimedDeepgram(DeepgramStandIn):
    """The tests' Deepgram stand-in, stamping when each final leaves."""

    final_at: list[float] = field(default_factory=list)
    sessions: int = 0

    async def _send(self, ws: web.WebSocketResponse, out: tuple[str, float, float], request_id: str) -> None:
        await super()._send(ws, out, request_id)
        if out[0] == "final":
            self.final_at.append(time.monotonic())


@dataclass
class TimedLLM(OpenAIStandIn):
    """The tests' chat-completions stand-in; `arrived` stamps each request (after its body is read)."""

    arrived: list[tuple[float, bool]] = field(default_factory=list)  # (time, follows a tool result)

    def __post_init__(self) -> None:
        inner = self.script

        def stamped(body: dict[str, Any]) -> TextReply | ToolCallReply:
            self.arrived.append((time.monotonic(), bool(trailing_tool_results(body))))
            return inner(body)

        self.script = stamped


@dataclass
class VoiceServiceStandIn:
    """`POST /v1/speech` like voice_service.service: PCM at 24 kHz, first bytes after `first_byte`."""

    first_byte: float = TTS_FIRST_BYTE
    seconds_per_char: float = 0.03
    max_seconds: float = 3.0
    requests: list[float] = field(default_factory=list)
    first_bytes: list[float] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/speech", self._speech)
        return app

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(time.monotonic())
        text = (await request.json())["text"]
        await asyncio.sleep(self.first_byte)
        seconds = min(max(len(text) * self.seconds_per_char, 0.2), self.max_seconds)
        t = np.arange(int(seconds * 24_000)) / 24_000
        pcm = (0.2 * np.sin(2 * np.pi * 220 * t) * 32767).astype(np.int16).tobytes()
        resp = web.StreamResponse(headers={"Content-Type": "audio/pcm", "X-Sample-Rate": "24000"})
        await resp.prepare(request)
        step = 4_800  # 100 ms of 24 kHz int16
        for i in range(0, len(pcm), step):
            await resp.write(pcm[i : i + step])
            if i == 0:
                self.first_bytes.append(time.monotonic())
        await resp.write_eof()
        return resp


@dataclass
class Providers:
    """The three provider stand-ins and their URLs."""

    stt: TimedDeepgram
    llm: TimedLLM
    tts: VoiceServiceStandIn
    stt_url: str = ""
    llm_url: str = ""
    tts_url: str = ""


def make_providers(transcripts: list[str] | None = None) -> Providers:
    return Providers(
        stt=TimedDeepgram(
            transcripts=transcripts or [],
            # the stand-in compares float sums of chunk lengths: a hair under 250 ms
            silence_to_end=STT_FINAL - 1e-6,
            chunk_seconds=STT_CHUNK,
        ),
        llm=TimedLLM(script=script, first_token_delay=LLM_FIRST_TOKEN),
        tts=VoiceServiceStandIn(),
    )


@contextlib.asynccontextmanager
async def serve_providers(
    providers: Providers, ports: tuple[int, int, int] = (0, 0, 0)
) -> AsyncIterator[Providers]:
    """Serve the stand-ins on 127.0.0.1."""
    runners = []
    urls = []
    try:
        for app, port in zip(
            (providers.stt.app(), providers.llm.app(), providers.tts.app()), ports, strict=True
        ):
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", port)
            await site.start()
            runners.append(runner)
            urls.append(f"http://127.0.0.1:{runner.addresses[0][1]}")
        providers.stt_url = urls[0].replace("http://", "ws://") + "/v1/listen"
        providers.llm_url = urls[1] + "/v1"
        providers.tts_url = urls[2]
        yield providers
    finally:
        for runner in runners:
            await runner.cleanup()


# ---------------------------------------------------------------------- MCP server


@dataclass
class OrdersTool:
    """A real MCP server (streamable HTTP) whose tool stamps its own time."""

    calls: list[tuple[float, float]] = field(default_factory=list)
    requests: list[tuple[float, float]] = field(default_factory=list)  # every HTTP request, in and out

    def build(self) -> Any:
        from mcp.server.mcpserver import MCPServer

        server = MCPServer("orders")

        @server.tool()
        async def lookup_order(order_id: str) -> str:
            """Look up the status of an order."""
            start = time.monotonic()
            result = f"Order {order_id}: shipped yesterday."
            self.calls.append((start, time.monotonic()))
            return result

        return server

    def timed(self, app: Any) -> Any:
        """ASGI middleware: the server's own time per HTTP request, in to last byte out."""

        async def wrapper(scope: dict, receive: Callable, send: Callable) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            start = time.monotonic()
            try:
                await app(scope, receive, send)
            finally:
                self.requests.append((start, time.monotonic()))

        return wrapper


@contextlib.asynccontextmanager
async def serve_orders(orders: OrdersTool) -> AsyncIterator[str]:
    """Serve `orders` on 127.0.0.1 (uvicorn in this loop), timed; yields its `/mcp` URL."""
    from testkit.standins.mcp_server import serve_mcp

    async with serve_mcp(orders.build(), wrap=orders.timed) as url:
        yield url


# ---------------------------------------------------------------------- audio in and out


def speech_end(pcm: np.ndarray, sample_rate: int) -> int:
    """The sample index just after the last voiced 10 ms window of `pcm`."""
    win = sample_rate // 100
    n = len(pcm) // win
    rms = np.sqrt(np.mean(pcm[: n * win].astype(np.float64).reshape(n, win) ** 2, axis=1))
    voiced = np.nonzero(rms >= VOICED_RMS)[0]
    return int((voiced[-1] + 1) * win) if len(voiced) else 0


class TimedMicrophone:
    """Feeds `frame_ms` frames in real time (silence between utterances), stamps the end of speech.

    `say()` returns the moment the frame holding the last voiced sample was handed to
    the session: the earliest moment any code could know the user stopped.
    """

    def __init__(
        self, input: PushAudioInput, *, sample_rate: int = SAMPLE_RATE, frame_ms: int = FRAME_MS
    ) -> None:
        self.input = input
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.frame_seconds = frame_ms / 1000
        self.lateness: list[float] = []  # how late each frame was pushed, seconds
        self.pushed_seconds = 0.0
        self._queue: asyncio.Queue[tuple[np.ndarray, int, asyncio.Future[float]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def say(self, text: str, *, pause_after: float = 0.3) -> float:
        return await self.play(speak(text, self.sample_rate), pause_after=pause_after)

    async def play(self, speech: np.ndarray, *, pause_after: float = 0.3) -> float:
        """Like `say`, for speech already made (at this microphone's sample rate)."""
        end = speech_end(speech, self.sample_rate)
        pcm = np.concatenate([speech, silence(pause_after, self.sample_rate)])
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        await self._queue.put((pcm, end, done))
        return await done

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.input.close()

    async def _run(self) -> None:
        step = self.sample_rate * self.frame_ms // 1000
        quiet = frames(silence(self.frame_seconds, self.sample_rate), self.sample_rate, self.frame_ms)[0]
        next_at = time.monotonic()
        while True:
            try:
                pcm, end, done = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                pcm, end, done = None, 0, None
            chunk = frames(pcm, self.sample_rate, self.frame_ms) if pcm is not None else [quiet]
            last_voiced_frame = (end - 1) // step if end else -1
            ended_at = 0.0
            for i, frame in enumerate(chunk):
                self.input.push(frame)
                self.pushed_seconds += self.frame_seconds
                if i == last_voiced_frame:
                    ended_at = time.monotonic()
                next_at += self.frame_seconds
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    self.lateness.append(-delay)
                    await asyncio.sleep(0)
            if done is not None and not done.done():
                done.set_result(ended_at)


class StampedOutput(RecordingAudioOutput):
    """The tests' recording speaker; `first_frames` stamps the first frame of every segment."""

    def __init__(self, *, speed: float = 4.0) -> None:
        super().__init__(sample_rate=24_000, speed=speed)
        self.first_frames: list[float] = []

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        arrived = time.monotonic()
        await super().capture_frame(frame)
        if self._pushed == frame.duration:  # the first frame since the last flush
            self.first_frames.append(arrived)


# ---------------------------------------------------------------------- sessions


def character_configs(
    root: Path, mcp_url: str | None, *, extra_yaml: str = ""
) -> tuple[SessionConfig, DispatchConfig, Settings]:
    """A session of the bench character, built the way the console builds one.

    `extra_yaml` is appended to the character file (a `turn:` block, say).
    """
    chars = root / "characters"
    chars.mkdir(parents=True, exist_ok=True)
    text = CHARACTER.format(slug="bench")
    if mcp_url:
        text += MCP_PART.format(mcp_url=mcp_url)
    text += extra_yaml
    (chars / "bench.yaml").write_text(text)
    settings = Settings(_env_file=None, characters_dir=chars)
    config, dispatch = console_session("bench", settings)
    return config, dispatch, settings


def provider_settings(settings: Settings, providers: Providers | dict[str, str]) -> Settings:
    urls = (
        providers
        if isinstance(providers, dict)
        else {"stt": providers.stt_url, "llm": providers.llm_url, "tts": providers.tts_url}
    )
    return settings.model_copy(
        update={
            "deepgram_api_key": SecretStr("dg-bench"),
            "deepgram_base_url": urls["stt"],
            "openai_api_key": SecretStr("oa-bench"),
            "openai_base_url": urls["llm"],
            "chatterbox_url": urls["tts"],
        }
    )


def session_models(config: SessionConfig, settings: Settings, local: LocalModels) -> SessionModels:
    """The models a job builds (agent.worker._build_models), pointed at the stand-ins."""
    return SessionModels(
        vad=session_vad(local.vad, config.turn),
        turn_detector=local.turn_detector,
        stt=build_stt(config, settings),
        llm=build_llm(config, settings),
        tts=build_tts(config, settings),
    )


@dataclass
class VoiceSession:
    """One running conversation with its microphone, speaker and event stamps."""

    conversation: Conversation
    mic: TimedMicrophone
    speaker: StampedOutput
    user_turns: list[dict[str, Any]] = field(default_factory=list)
    listening_at: list[float] = field(default_factory=list)  # VAD: the user stopped speaking
    events: list[Any] = field(default_factory=list)

    async def aclose(self) -> None:
        await self.mic.aclose()
        await self.conversation.aclose()


async def open_session(
    config: SessionConfig,
    dispatch: DispatchConfig,
    settings: Settings,
    local: LocalModels,
    *,
    speed: float = 4.0,
) -> VoiceSession:
    mic_input = PushAudioInput()
    speaker = StampedOutput(speed=speed)
    mic = TimedMicrophone(mic_input)
    mic.start()
    events: list[Any] = []
    conv = await start_conversation(
        config=config,
        dispatch=dispatch,
        settings=settings,
        models=session_models(config, settings, local),
        report=events.append,
        audio_input=mic_input,
        audio_output=speaker,
    )
    vs = VoiceSession(conversation=conv, mic=mic, speaker=speaker, events=events)
    offset = time.time() - time.monotonic()

    def on_item(ev: Any) -> None:
        item = ev.item
        if getattr(item, "role", None) == "user":
            m = dict(item.metrics or {})
            stopped, eot = m.get("stopped_speaking_at"), m.get("end_of_turn_delay")
            vs.user_turns.append(
                {
                    "added": time.monotonic(),
                    "stopped": stopped - offset if stopped else None,
                    "end_of_turn_delay": eot,
                    "committed": stopped + eot - offset if stopped and eot is not None else None,
                }
            )

    def on_user_state(ev: Any) -> None:
        if ev.new_state == "listening" and ev.old_state == "speaking":
            vs.listening_at.append(time.monotonic())

    conv.session.on("conversation_item_added", on_item)
    conv.session.on("user_state_changed", on_user_state)
    return vs


def quiet_logs() -> None:
    """Warnings only, without the one every session without a room logs."""
    logging.basicConfig(level=logging.WARNING)
    for name in ("httpx", "mcp", "livekit", "livekit.agents", "uvicorn"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # "resume_false_interruption is enabled but audio output does not support pause"
    logging.getLogger("livekit.agents").addFilter(
        lambda record: not str(record.msg).startswith("resume_false_interruption")
    )


# How often a benchmark checks whether something happened (testkit.waiting.within):
# the timings themselves are stamped where they happen, this only bounds the wait.
POLL = 0.005

# ---------------------------------------------------------------------- stand-ins in their own process


async def _serve_forever(ports: tuple[int, int, int]) -> None:
    providers = make_providers()
    async with serve_providers(providers, ports):
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="the provider stand-ins, for bench.capacity")
    parser.add_argument("--ports", type=int, nargs=3, required=True, metavar=("STT", "LLM", "TTS"))
    asyncio.run(_serve_forever(tuple(parser.parse_args().ports)))


if __name__ == "__main__":
    main()
