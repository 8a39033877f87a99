"""The ingest client: reports a session's events to the token server.

`IngestClient.emit()` is synchronous and never blocks or raises, so it can be called
from any session callback without touching the audio path. Events go into a bounded
buffer; a background task posts them in batches to
`POST {base_url}/internal/v1/sessions/{session_id}/events`, signed with an ingest
token. Connection errors, 5xx and 429 are retried with exponential backoff and
jitter, resending the same batch (same event ids: the token server stores a retried
batch once). Other 4xx answers are final: the batch is dropped and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import re
import threading
import time
from collections import deque
from typing import Any

import aiohttp

from contract.events import (
    INGEST_PATH,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    FormUpdated,
    SessionEnded,
    SessionEvent,
)
from contract.ingest_token import sign_ingest_token

logger = logging.getLogger("oshara.agent.ingest")

# Never dropped when the buffer is full: what the caller cannot get back later.
_CRITICAL = (SessionEnded, FormUpdated)
_BATCH_OVERHEAD = len(b'{"events":[]}')


# What the token server refuses in any string (its strict JSON reader): C0 controls but
# tab, LF and CR, and lone surrogates. A tool's ANSI-coloured error text would otherwise
# get the whole batch refused, and its transcript lines with it.
_UNSENDABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def _sendable(value: Any) -> Any:
    """`value` with unsendable characters replaced by U+FFFD and non-finite numbers by null."""
    if isinstance(value, str):
        return _UNSENDABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_sendable(k): _sendable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_sendable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class IngestClient:
    """Batches a session's events to the token server, retrying on transient failures."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        api_secret: str,
        session_id: str,
        http_session: aiohttp.ClientSession | None = None,
        max_buffered_events: int = 5_000,
        flush_interval: float = 0.2,
        request_timeout: float = 10.0,
        initial_backoff: float = 0.25,
        max_backoff: float = 5.0,
    ) -> None:
        self._url = base_url.rstrip("/") + INGEST_PATH.format(session_id=session_id)
        self._api_key = api_key
        self._api_secret = api_secret
        self._session_id = session_id
        self._http = http_session
        self._owns_http = http_session is None
        self._max_buffered = max_buffered_events
        self._flush_interval = flush_interval
        self._request_timeout = request_timeout
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff

        # (event, serialized JSON bytes, critical)
        self._buffer: deque[tuple[SessionEvent, bytes, bool]] = deque()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        self._gone = False  # the token server refused the session for good (409)
        self._batch_limit = MAX_BATCH_EVENTS
        # how many events at the head of the buffer the current request carries
        self._inflight = 0
        self._loop_thread: int | None = None

        self.dropped = 0
        """Events dropped: buffer overflow, or refused by the token server."""
        self.sent = 0
        """Events the token server accepted (new or duplicate)."""

    @property
    def pending(self) -> int:
        """Events buffered and not yet accepted by the token server."""
        return len(self._buffer)

    def emit(self, event: SessionEvent) -> None:
        """Queue one event for sending. Never blocks, never raises."""
        try:
            loop = self._loop
            if loop is not None and threading.get_ident() != self._loop_thread:
                loop.call_soon_threadsafe(self._enqueue, event)
                return
            self._enqueue(event)
        except Exception:
            logger.exception("could not queue a session event", extra={"session_id": self._session_id})

    def _enqueue(self, event: SessionEvent) -> None:
        if self._closed or self._gone:
            self.dropped += 1
            logger.warning(
                "session event after the ingest client closed",
                extra={"session_id": self._session_id, "event_type": event.type},
            )
            return
        data = json.dumps(_sendable(event.model_dump(mode="json")), ensure_ascii=False, separators=(",", ":"))
        critical = isinstance(event, _CRITICAL)
        if len(self._buffer) >= self._max_buffered and not self._drop_oldest_non_critical() and not critical:
            self.dropped += 1
            return
        self._buffer.append((event, data.encode(), critical))
        self._ensure_task()
        self._wake.set()

    def _drop_oldest_non_critical(self) -> bool:
        # Events in flight are already sent; dropping them would not un-send them.
        for i in range(self._inflight, len(self._buffer)):
            if not self._buffer[i][2]:
                del self._buffer[i]
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 100 == 0:
                    logger.warning(
                        "ingest buffer full, dropping events",
                        extra={"session_id": self._session_id, "dropped": self.dropped},
                    )
                return True
        return False

    def _ensure_task(self) -> None:
        if self._task is not None:
            return
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._task = loop.create_task(self._run(), name="oshara-ingest")

    def start(self) -> None:
        """Start the background sender now (it also starts on the first `emit`)."""
        self._ensure_task()

    async def aclose(self, deadline: float = 5.0) -> None:
        """Send what is buffered, waiting at most `deadline` seconds, then stop."""
        if self._closed:
            return
        self._closing = True
        self._wake.set()
        task = self._task
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), deadline)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                if self._buffer:
                    self.dropped += len(self._buffer)
                    logger.warning(
                        "ingest flush deadline passed, events lost",
                        extra={"session_id": self._session_id, "lost": len(self._buffer)},
                    )
                    self._buffer.clear()
        self._closed = True
        if self._owns_http and self._http is not None:
            await self._http.close()

    def _next_batch(self) -> tuple[int, bytes]:
        count = 0
        size = _BATCH_OVERHEAD
        parts: list[bytes] = []
        for _, data, _ in self._buffer:
            extra = len(data) + (1 if parts else 0)
            if count >= self._batch_limit or (parts and size + extra > MAX_BATCH_BYTES):
                break
            parts.append(data)
            size += extra
            count += 1
        return count, b'{"events":[' + b",".join(parts) + b"]}"

    async def _run(self) -> None:
        backoff = self._initial_backoff
        while True:
            if not self._buffer:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                if not self._closing:
                    # gather what arrives together into one batch
                    await asyncio.sleep(self._flush_interval)
                continue
            count, body = self._next_batch()
            self._inflight = count
            try:
                outcome = await self._post(body)
            finally:
                self._inflight = 0
            if outcome == "ok":
                self.sent += count
                self._pop(count)
                backoff = self._initial_backoff
            elif outcome == "retry":
                delay = random.uniform(0, backoff)  # noqa: S311 - jitter, not security
                backoff = min(backoff * 2, self._max_backoff)
                await asyncio.sleep(delay)
            elif outcome == "too_big" and count > 1:
                # keep the events and send them in smaller batches
                self._batch_limit = max(1, count // 2)
            elif outcome == "gone":
                self._gone = True
                self.dropped += len(self._buffer)
                self._buffer.clear()
                return
            else:
                self.dropped += count
                self._pop(count)

    def _pop(self, count: int) -> None:
        for _ in range(count):
            self._buffer.popleft()
        self._batch_limit = MAX_BATCH_EVENTS

    async def _post(self, body: bytes) -> str:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        token = sign_ingest_token(self._api_key, self._api_secret, self._session_id)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        started = time.monotonic()
        try:
            async with self._http.post(
                self._url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._request_timeout),
            ) as resp:
                status = resp.status
                await resp.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            logger.info(
                "token server unreachable, will retry",
                extra={"session_id": self._session_id, "error": type(exc).__name__},
            )
            return "retry"
        extra: dict[str, Any] = {
            "session_id": self._session_id,
            "status": status,
            "elapsed": round(time.monotonic() - started, 3),
        }
        if 200 <= status < 300:
            return "ok"
        if status >= 500 or status == 429:
            logger.info("token server busy, will retry", extra=extra)
            return "retry"
        if status == 413:
            logger.warning("ingest batch too large", extra=extra)
            return "too_big"
        if status == 409:
            logger.warning("token server refuses events: session ended long ago", extra=extra)
            return "gone"
        logger.error("token server rejected an ingest batch", extra=extra)
        return "drop"
