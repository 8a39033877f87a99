"""What happens in a session, turned into ingest events.

`SessionReporter` subscribes to an `AgentSession`'s events and emits into the
ingest client's buffer (a synchronous call), so reporting never waits on the
network and never sits on the audio path.

- `conversation_item_added` → `Transcript`, with `source` `text` for a typed user turn
  and for every turn of a text-only session; an agent message also carries the
  turn's latency (`ChatMessage.metrics`) → `Metrics`;
- `error` → `Error` (and a short spoken apology, see `agent.conversation`);
- `close` → `SessionEnded` with the reason and the session's usage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from livekit.agents import llm, stt, tts
from livekit.agents.metrics.usage import LLMModelUsage, STTModelUsage, TTSModelUsage
from livekit.agents.voice import AgentSession
from livekit.agents.voice.events import CloseEvent, CloseReason, ConversationItemAddedEvent, ErrorEvent

from contract.events import Error, Metrics, SessionEnded, SessionEvent, Transcript, Usage
from contract.model import SessionMode

from .typed_turns import is_typed

logger = logging.getLogger("oshara.agent.reporting")

# How a part of the session hands an event on (in the worker, `IngestClient.emit`, which
# batches it for the token server); every part takes one, so a test can collect its events.
Report = Callable[[SessionEvent], None]


def _ms(value: Any) -> float | None:
    return round(float(value) * 1000, 1) if isinstance(value, int | float) else None


def error_source(source: Any) -> str:
    """Which stage an `ErrorEvent` came from, in the event contract's words."""
    if isinstance(source, stt.STT):
        return "stt"
    if isinstance(source, llm.LLM):
        return "llm"
    if isinstance(source, tts.TTS):
        return "tts"
    return "agent"


def usage_of(session: AgentSession) -> Usage:
    """The session's consumption, summed over its models."""
    usage = Usage()
    try:
        model_usage = session.usage.model_usage
    except Exception:
        return usage
    for item in model_usage:
        if isinstance(item, LLMModelUsage):
            usage.llm_prompt_tokens += item.input_tokens
            usage.llm_completion_tokens += item.output_tokens
        elif isinstance(item, TTSModelUsage):
            usage.tts_characters += item.characters_count
            usage.audio_seconds_out += item.audio_duration
        elif isinstance(item, STTModelUsage):
            usage.audio_seconds_in += item.audio_duration
    return usage


class SessionReporter:
    """Reports one session's transcript, metrics, errors and end."""

    def __init__(self, report: Report, *, language: str | None = None, mode: SessionMode = "voice") -> None:
        self._report = report
        self._language = language
        self._mode = mode
        self._started_at = time.time()
        self._last_user_metrics: dict[str, Any] = {}
        self.end_reason: str | None = None
        """Set by the end_call tool; otherwise the close reason is used."""
        self.ended = False
        self.errors: list[ErrorEvent] = []

    def attach(self, session: AgentSession) -> None:
        """Subscribe to `session`'s events."""
        session.on("conversation_item_added", self._on_item)
        session.on("error", self._on_error)
        session.on("close", lambda ev: self._on_close(session, ev))

    def _rel(self, at: Any) -> float | None:
        return round(at - self._started_at, 3) if isinstance(at, int | float) and at > 0 else None

    def _on_item(self, ev: ConversationItemAddedEvent) -> None:
        item = ev.item
        if not isinstance(item, llm.ChatMessage) or item.role not in ("user", "assistant"):
            return
        text = item.text_content or ""
        metrics = dict(item.metrics or {})
        if text:
            typed = self._mode == "text" or (item.role == "user" and is_typed(item))
            self._report(
                Transcript(
                    role="user" if item.role == "user" else "agent",
                    source="text" if typed else "voice",
                    text=text[:20_000],
                    start_time=self._rel(metrics.get("started_speaking_at")),
                    end_time=self._rel(metrics.get("stopped_speaking_at")),
                    interrupted=bool(item.interrupted),
                    language=self._language,
                )
            )
        if item.role == "user":
            self._last_user_metrics = metrics
            return
        user = self._last_user_metrics
        self._last_user_metrics = {}
        eou = _ms(user.get("end_of_turn_delay"))
        ttft = _ms(metrics.get("llm_node_ttft"))
        ttfb = _ms(metrics.get("tts_node_ttfb"))
        e2e = _ms(metrics.get("e2e_latency"))
        if e2e is None and None not in (eou, ttft, ttfb):
            e2e = round(eou + ttft + ttfb, 1)  # type: ignore[operator]
        if any(v is not None for v in (eou, ttft, ttfb, e2e)):
            self._report(
                Metrics(
                    turn_id=item.id[:64],
                    end_of_turn_delay_ms=eou,
                    transcription_delay_ms=_ms(user.get("transcription_delay")),
                    llm_ttft_ms=ttft,
                    tts_ttfb_ms=ttfb,
                    e2e_latency_ms=e2e,
                )
            )

    def _on_error(self, ev: ErrorEvent) -> None:
        self.errors.append(ev)
        source = error_source(ev.source)
        recoverable = bool(getattr(ev.error, "recoverable", True))
        inner = getattr(ev.error, "error", ev.error)
        message = f"{source} error: {type(inner).__name__}: {inner}"
        logger.warning("session error", extra={"source": source, "recoverable": recoverable})
        self._report(Error(source=source, message=message[:2000], recoverable=recoverable))  # type: ignore[arg-type]

    def _on_close(self, session: AgentSession, ev: CloseEvent) -> None:
        reason = self.end_reason
        if reason is None:
            if ev.reason == CloseReason.ERROR and ev.error is not None:
                reason = f"{ev.error.type.removesuffix('_error')} kept failing"
            else:
                reason = {
                    CloseReason.PARTICIPANT_DISCONNECTED: "user left",
                    CloseReason.JOB_SHUTDOWN: "worker shut the session down",
                    CloseReason.USER_INITIATED: "session closed",
                    CloseReason.TASK_COMPLETED: "task completed",
                }.get(ev.reason, str(ev.reason.value))
        self.report_end(reason, usage_of(session))

    def report_end(self, reason: str, usage: Usage | None = None) -> None:
        """Report the end of the session, once."""
        if self.ended:
            return
        self.ended = True
        self._report(SessionEnded(reason=reason[:200], usage=usage or Usage()))
