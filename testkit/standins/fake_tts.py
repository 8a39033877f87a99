"""A fake text-to-speech engine: a real `livekit.agents.tts.TTS` that plays a tone.

The tone lasts in proportion to the text, after a configurable first-byte delay,
and the engine can be told to fail its next syntheses, which the session reports
as TTS errors. It stands in for the Chatterbox plugin until that one is wired in.
"""

from __future__ import annotations

import asyncio

import numpy as np
from livekit.agents import APIConnectionError, APIConnectOptions, tts
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS

SAMPLE_RATE = 24_000


class FakeTTS(tts.TTS):
    """A tone per synthesis; `fail_next` syntheses raise a retryable connection error."""

    def __init__(
        self,
        *,
        first_byte_delay: float = 0.05,
        seconds_per_char: float = 0.03,
        max_seconds: float = 3.0,
        fail_next: int = 0,
    ) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=SAMPLE_RATE,
            num_channels=1,
        )
        self.first_byte_delay = first_byte_delay
        self.seconds_per_char = seconds_per_char
        self.max_seconds = max_seconds
        self.fail_next = fail_next
        self.texts: list[str] = []

    @property
    def model(self) -> str:
        return "fake-tone"

    @property
    def provider(self) -> str:
        return "oshara-tests"

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return _ToneStream(tts=self, input_text=text, conn_options=conn_options)


class _ToneStream(tts.ChunkedStream):
    def __init__(self, *, tts: FakeTTS, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._fake = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        await asyncio.sleep(self._fake.first_byte_delay)
        if self._fake.fail_next > 0:
            self._fake.fail_next -= 1
            raise APIConnectionError("fake TTS told to fail")
        self._fake.texts.append(self.input_text)
        seconds = min(max(len(self.input_text) * self._fake.seconds_per_char, 0.2), self._fake.max_seconds)
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        pcm = (0.2 * np.sin(2 * np.pi * 220 * t) * 32767).astype(np.int16)
        output_emitter.initialize(
            request_id="fake", sample_rate=SAMPLE_RATE, num_channels=1, mime_type="audio/pcm"
        )
        output_emitter.push(pcm.tobytes())
        output_emitter.flush()
