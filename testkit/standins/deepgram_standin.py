"""A local stand-in for Deepgram's streaming `/v1/listen` websocket.

It speaks the protocol the livekit Deepgram plugin reads: `SpeechStarted`,
`Results` (with `is_final` / `speech_final`), `UtteranceEnd` and `Metadata`
messages, and it handles the client's `KeepAlive`, `Finalize` and `CloseStream`
text messages. It finds utterances in the linear16 audio it receives by energy
(the test audio is espeak speech separated by digital silence) and answers each
one with the next scripted transcript.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field

import numpy as np
from aiohttp import WSMsgType, web

_CHUNK_SECONDS = 0.05
_RMS_SPEECH = 300.0
_SILENCE_TO_END = 0.35


@dataclass
class DeepgramStandIn:
    """Scripted transcripts, handed out one per detected utterance."""

    transcripts: list[str]
    connections: list[dict[str, str]] = field(default_factory=list)
    auth_headers: list[str] = field(default_factory=list)
    finals: list[str] = field(default_factory=list)
    audio_seconds: float = 0.0
    silence_to_end: float = _SILENCE_TO_END
    """Seconds of silence (stream time) after the last voiced chunk before the final is sent."""
    chunk_seconds: float = _CHUNK_SECONDS
    """Granularity of the energy detector."""

    def app(self) -> web.Application:
        """The aiohttp application serving `/v1/listen`."""
        app = web.Application()
        app.router.add_get("/v1/listen", self._listen)
        return app

    async def _listen(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections.append(dict(request.query))
        self.auth_headers.append(request.headers.get("Authorization", ""))
        rate = int(request.query.get("sample_rate", "16000"))
        request_id = str(uuid.uuid4())
        state = _Utterance(silence_to_end=self.silence_to_end, chunk_seconds=self.chunk_seconds)
        stream_time = 0.0
        pending = np.zeros(0, dtype=np.int16)
        chunk = int(rate * self.chunk_seconds)
        await ws.send_json({"type": "Metadata", "request_id": request_id, "channels": 1})

        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                pending = np.concatenate([pending, np.frombuffer(msg.data, dtype=np.int16)])
                while len(pending) >= chunk:
                    samples, pending = pending[:chunk], pending[chunk:]
                    stream_time += self.chunk_seconds
                    self.audio_seconds += self.chunk_seconds
                    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
                    for out in state.push(rms >= _RMS_SPEECH, stream_time):
                        await self._send(ws, out, request_id)
            elif msg.type == WSMsgType.TEXT:
                kind = json.loads(msg.data).get("type")
                if kind == "Finalize" and state.speaking:
                    await self._send(ws, state.finish(stream_time), request_id)
                elif kind == "CloseStream":
                    break
        await ws.close()
        return ws

    async def _send(self, ws: web.WebSocketResponse, out: tuple[str, float, float], request_id: str) -> None:
        kind, start, end = out
        if kind == "started":
            await ws.send_json({"type": "SpeechStarted", "channel": [0], "timestamp": start})
            return
        final = kind == "final"
        text = self.transcripts[len(self.finals)] if len(self.finals) < len(self.transcripts) else "okay"
        if not final:
            text = " ".join(text.split()[:2])
        words = text.split()
        step = (end - start) / max(len(words), 1)
        payload = {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": end - start,
            "start": start,
            "is_final": final,
            "speech_final": final,
            "from_finalize": False,
            "channel": {
                "alternatives": [
                    {
                        "transcript": text,
                        "confidence": 0.98,
                        "words": [
                            {
                                "word": w.strip(".,?!").lower(),
                                "punctuated_word": w,
                                "start": start + i * step,
                                "end": start + (i + 1) * step,
                                "confidence": 0.98,
                            }
                            for i, w in enumerate(words)
                        ],
                    }
                ]
            },
            "metadata": {"request_id": request_id, "model_info": {"name": "standin"}},
        }
        if final:
            self.finals.append(text)
        await ws.send_json(payload)
        if final:
            await ws.send_json({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": end})
            await asyncio.sleep(0)


@dataclass
class _Utterance:
    speaking: bool = False
    start: float = 0.0
    last_voice: float = 0.0
    interim_sent: bool = False
    silence_to_end: float = _SILENCE_TO_END
    chunk_seconds: float = _CHUNK_SECONDS

    def push(self, voiced: bool, now: float) -> list[tuple[str, float, float]]:
        out: list[tuple[str, float, float]] = []
        if voiced:
            if not self.speaking:
                self.speaking, self.start, self.interim_sent = True, now - self.chunk_seconds, False
                out.append(("started", self.start, now))
            self.last_voice = now
            if not self.interim_sent and now - self.start > 0.4:
                self.interim_sent = True
                out.append(("interim", self.start, now))
        elif self.speaking and now - self.last_voice >= self.silence_to_end:
            out.append(self.finish(now))
        return out

    def finish(self, now: float) -> tuple[str, float, float]:
        self.speaking = False
        return ("final", self.start, self.last_voice)
