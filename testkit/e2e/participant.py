"""The user, as a Python participant (livekit's `rtc.Room`) in the session's room.

It hears the agent's audio track (frames counted, loudness measured), reads the
`lk.transcription` and `oshara.form` text streams, speaks espeak-ng sentences into a
microphone track at real-time pace, and types turns on `lk.chat` as the widget does.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from livekit import rtc

from testkit.audio.microphone import Microphone

SAMPLE_RATE = 48_000
CHAT_TOPIC = "lk.chat"
_LOUD_RMS = 200.0  # int16 RMS of a frame that carries sound, far above Opus' decoded silence


@dataclass
class Heard:
    """What reached the user's ear from the agent."""

    frames: int = 0
    loud_frames: int = 0
    loud_at: list[float] = field(default_factory=list)  # monotonic time of each loud frame

    def loud_since(self, t: float) -> int:
        return sum(1 for at in self.loud_at if at >= t)


class User:
    """Joins with the token the token server returned."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.room = rtc.Room()
        self.heard = Heard()
        self.transcriptions: list[dict[str, Any]] = []
        self.form: list[dict[str, Any]] = []
        self.disconnected = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._streams: list[rtc.AudioStream] = []
        self._mic: Microphone | None = None
        self.room.on("track_subscribed", self._on_track)
        self.room.on("disconnected", lambda *_: self.disconnected.set())
        self.room.register_text_stream_handler("lk.transcription", self._on_text("transcription"))
        self.room.register_text_stream_handler("oshara.form", self._on_text("form"))

    async def join(self) -> User:
        await self.room.connect(self.url, self.token, rtc.RoomOptions(auto_subscribe=True))
        return self

    @property
    def agent(self) -> rtc.RemoteParticipant | None:
        return next(
            (
                p
                for p in self.room.remote_participants.values()
                if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
            ),
            None,
        )

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_track(
        self, track: rtc.Track, _pub: rtc.RemoteTrackPublication, _p: rtc.RemoteParticipant
    ) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            self._spawn(self._listen(track))

    async def _listen(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1)
        self._streams.append(stream)
        async for event in stream:
            samples = np.frombuffer(event.frame.data, dtype=np.int16)
            self.heard.frames += 1
            if samples.size and float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) > _LOUD_RMS:
                self.heard.loud_frames += 1
                self.heard.loud_at.append(time.monotonic())

    def _on_text(self, kind: str) -> Callable[[rtc.TextStreamReader, str], None]:
        def handler(reader: rtc.TextStreamReader, identity: str) -> None:
            async def read() -> None:
                text = await reader.read_all()
                entry = {"from": identity, "text": text, "attributes": dict(reader.info.attributes or {})}
                if kind == "form":
                    entry.update(json.loads(text))
                    self.form.append(entry)
                else:
                    self.transcriptions.append(entry)

            self._spawn(read())

        return handler

    async def publish_microphone(self) -> None:
        """Publish a microphone track that sends silence until `say()` is called."""
        source = rtc.AudioSource(SAMPLE_RATE, 1)
        track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await self.room.local_participant.publish_track(track, options)
        self._mic = Microphone(source, sample_rate=SAMPLE_RATE)
        self._mic.start()

    async def say(self, text: str, *, pause_after: float = 0.3) -> None:
        """Speak `text` into the published microphone; returns once it has been sent."""
        assert self._mic is not None, "publish_microphone() first"
        await self._mic.say(text, pause_after=pause_after)

    async def send_text(self, text: str) -> None:
        """Send a typed turn: a text stream on `lk.chat`, which livekit-agents reads as user input."""
        await self.room.local_participant.send_text(text, topic=CHAT_TOPIC)

    def agent_audio_tracks(self) -> int:
        """How many audio tracks the agent has published."""
        agent = self.agent
        if agent is None:
            return 0
        return sum(1 for pub in agent.track_publications.values() if pub.kind == rtc.TrackKind.KIND_AUDIO)

    def greeted(self) -> bool:
        """The agent has spoken its greeting and now listens, so speech sent from here reaches its STT.

        While the agent speaks uninterruptibly, and in the first seconds of its first speech (its
        AEC warm-up), livekit-agents hands the STT silence instead of the user's audio: a sentence
        said over the greeting can be lost, as it would be in a real call.
        """
        agent = self.agent
        return (
            bool(self.spoken("agent"))
            and agent is not None
            and agent.attributes.get("lk.agent.state") == "listening"
        )

    def spoken(self, role: str) -> list[str]:
        """Final transcript lines of the agent (`agent`) or of the user (`user`)."""
        local = self.room.local_participant.identity
        return [
            t["text"]
            for t in self.transcriptions
            if (t["from"] == local) == (role == "user")
            and t["attributes"].get("lk.transcription_final") != "false"
        ]

    async def leave(self) -> None:
        if self._mic is not None:
            await self._mic.aclose()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for stream in self._streams:
            await stream.aclose()
        await self.room.disconnect()
