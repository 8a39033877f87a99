"""A real-time microphone for tests: silence, except when told to say something."""

from __future__ import annotations

import asyncio
import contextlib
import time

import numpy as np
from livekit import rtc

from .audio_io import PushAudioInput
from .speech import frames, silence, speak


class Microphone:
    """Feeds 20 ms frames at real-time pace; `say()` queues espeak speech.

    The frames go to `input`: a session's `PushAudioInput` (in-process), or an
    `rtc.AudioSource` behind a published microphone track (through a LiveKit room).
    """

    def __init__(self, input: PushAudioInput | rtc.AudioSource, *, sample_rate: int = 48_000) -> None:
        self.input = input
        self.sample_rate = sample_rate
        self._queue: asyncio.Queue[tuple[np.ndarray, asyncio.Future[None]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sending audio."""
        self._task = asyncio.create_task(self._run())

    async def say(self, text: str, *, pause_after: float = 0.2) -> None:
        """Speak `text` into the microphone; returns when it has been sent."""
        pcm = np.concatenate([speak(text, self.sample_rate), silence(pause_after, self.sample_rate)])
        done = asyncio.get_running_loop().create_future()
        await self._queue.put((pcm, done))
        await done

    async def aclose(self) -> None:
        """Stop sending audio."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if isinstance(self.input, rtc.AudioSource):
            await self.input.aclose()
        else:
            self.input.close()

    async def _send(self, frame: rtc.AudioFrame) -> None:
        if isinstance(self.input, rtc.AudioSource):
            await self.input.capture_frame(frame)
        else:
            self.input.push(frame)

    async def _run(self) -> None:
        quiet = frames(silence(0.02, self.sample_rate), self.sample_rate)[0]
        next_at = time.monotonic()
        while True:
            try:
                pcm, done = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                pcm, done = None, None
            for frame in frames(pcm, self.sample_rate) if pcm is not None else [quiet]:
                await self._send(frame)
                next_at += 0.02
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if done is not None and not done.done():
                done.set_result(None)
