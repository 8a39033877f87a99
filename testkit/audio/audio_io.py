"""Audio input and output for an `AgentSession` that runs without a room."""

from __future__ import annotations

import asyncio
import time

from livekit import rtc
from livekit.agents import utils
from livekit.agents.voice import io


class PushAudioInput(io.AudioInput):
    """The session's microphone: frames the test pushes."""

    def __init__(self) -> None:
        super().__init__(label="test-microphone")
        self._ch: utils.aio.Chan[rtc.AudioFrame] = utils.aio.Chan()

    def push(self, frame: rtc.AudioFrame) -> None:
        """Hand one frame to the session."""
        self._ch.send_nowait(frame)

    def close(self) -> None:
        """No more audio."""
        self._ch.close()

    async def __anext__(self) -> rtc.AudioFrame:
        return await self._ch.__anext__()


class RecordingAudioOutput(io.AudioOutput):
    """The session's speaker: keeps every frame and plays segments `speed` times real time."""

    def __init__(self, *, sample_rate: int = 24_000, speed: float = 4.0) -> None:
        super().__init__(
            label="test-speaker",
            capabilities=io.AudioOutputCapabilities(pause=False),
            sample_rate=sample_rate,
        )
        self.speed = speed
        self.frames: list[rtc.AudioFrame] = []
        self.segments: list[float] = []  # seconds of audio per finished segment
        self._pushed = 0.0
        self._interrupted = asyncio.Event()
        self._playout: asyncio.Task[None] | None = None
        self._started_at = 0.0

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._playout is not None and not self._playout.done():
            await self._playout
        if self._pushed == 0.0:
            self._started_at = time.monotonic()
            self.on_playback_started(created_at=time.time())
        self.frames.append(frame)
        self._pushed += frame.duration

    def flush(self) -> None:
        super().flush()
        if self._pushed:
            self._playout = asyncio.create_task(self._play(self._pushed))

    def clear_buffer(self) -> None:
        if self._pushed:
            self._interrupted.set()

    async def _play(self, duration: float) -> None:
        remaining = duration / self.speed - (time.monotonic() - self._started_at)
        try:
            await asyncio.wait_for(self._interrupted.wait(), max(remaining, 0.0))
            interrupted = True
        except TimeoutError:
            interrupted = False
        played = (
            duration if not interrupted else min(duration, (time.monotonic() - self._started_at) * self.speed)
        )
        self._pushed = 0.0
        self._interrupted.clear()
        self.segments.append(played)
        self.on_playback_finished(playback_position=played, interrupted=interrupted)

    @property
    def seconds(self) -> float:
        """All audio received, in seconds."""
        return sum(f.duration for f in self.frames)
