"""Post-call webhooks, sent when a session ends and when its analysis arrives.

The session's summary is POSTed to the character's `webhook_url`, signed, retried
with backoff, and every attempt is recorded. When the character version that ran the
session has an analysis, the `session.ended` delivery waits for it (up to
`ANALYSIS_WEBHOOK_WAIT_SECONDS`) and carries it; an analysis that arrives after the
delivery went is sent as a second event, `session.analyzed` (`analysis.py`).

Deliveries are queued in the database in the same transaction that ends the
session and sent by a background loop, never in a request's path. Deliveries are
sent one at a time, each leased just before it is sent for longer than one attempt
can take, so several token servers never send one twice at once.

Signature: `X-Oshara-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
keyed with the character's `webhook_secret`. Receivers should check it and reject
timestamps more than five minutes old.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import sqlalchemy as sa

from contract import Character
from contract.env_refs import MissingEnvironment, resolve_env_refs

from .clock import as_utc, utcnow
from .db import Database, sessions, webhook_attempts, webhook_deliveries

log = logging.getLogger("token_server.post_call")

SIGNATURE_HEADER = "X-Oshara-Signature"
# How much longer than the POST's timeout a lease lasts: time to build the payload
# before the POST and to record the attempt after it.
LEASE_MARGIN_SECONDS = 50.0


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Oshara-Signature` value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def resolve_secret(value: str | None) -> str | None:
    """The webhook secret with its `${ENV_NAME}` references resolved; None if one is unset or empty."""
    if value is None:
        return None
    try:
        return resolve_env_refs(value, os.environ)
    except MissingEnvironment:
        return None


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff from `base` up to `cap` seconds, for `window` seconds after queueing."""

    base: float = 10.0
    cap: float = 600.0
    window: float = 2 * 3600.0

    def next_delay(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failure."""
        return min(self.cap, self.base * 2 ** max(0, attempts - 1))


class PostCallWebhooks:
    """Sends queued post-call webhooks."""

    def __init__(
        self,
        db: Database,
        http: aiohttp.ClientSession,
        characters: dict[str, Character],
        summary: Any,
        *,
        policy: RetryPolicy,
        timeout_seconds: float = 10.0,
        lease_seconds: float | None = None,
    ) -> None:
        """`summary(session_id, event)` builds the payload (an awaitable returning a dict).

        A lease covers one attempt, so it must outlast the POST's timeout; by default
        it is the timeout plus `LEASE_MARGIN_SECONDS`.
        """
        if lease_seconds is None:
            lease_seconds = timeout_seconds + LEASE_MARGIN_SECONDS
        if lease_seconds <= timeout_seconds:
            raise ValueError("a webhook lease must outlast the attempt's timeout")
        self._db = db
        self._http = http
        self._characters = characters
        self._summary = summary
        self._policy = policy
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._lease = dt.timedelta(seconds=lease_seconds)

    async def _attempt(self, delivery: sa.Row, character: Character | None) -> tuple[int | None, str | None]:
        secret = resolve_secret(character.webhook_secret) if character else None
        if character is None:
            return None, "the character no longer exists"
        if character.webhook_secret and not secret:
            return None, "the webhook secret's environment variable is not set"
        payload = await self._summary(delivery.session_id, delivery.event)
        payload = {"event": delivery.event, "delivery_id": delivery.id, **payload}
        body = json.dumps(payload, separators=(",", ":"), default=str).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "oshara-webhooks/1",
            "X-Oshara-Event": delivery.event,
            "X-Oshara-Delivery": delivery.id,
        }
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, int(time.time()), body)
        try:
            async with self._http.post(
                delivery.url, data=body, headers=headers, timeout=self._timeout
            ) as resp:
                await resp.read()
                return resp.status, None if resp.status < 300 else f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return None, type(exc).__name__

    async def deliver_due(self, limit: int = 20) -> int:
        """Send up to `limit` due deliveries, one at a time; returns how many were attempted.

        Each is leased only when its turn comes: a lease taken for a whole batch would
        run out while the batch's later deliveries wait behind slow receivers.
        """
        for attempted in range(limit):
            delivery = await self._db.write(_claim_next, utcnow(), self._lease)
            if delivery is None:
                return attempted
            started = time.perf_counter()
            status_code, error = await self._attempt(delivery, self._characters.get(delivery.character))
            duration_ms = (time.perf_counter() - started) * 1000
            await self._record(delivery, status_code, error, duration_ms)
        return limit

    async def _record(
        self, delivery: sa.Row, status_code: int | None, error: str | None, duration_ms: float
    ) -> None:
        now = utcnow()
        attempts = delivery.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "locked_until": None}
        if error is None:
            values |= {"status": "delivered", "delivered_at": now, "next_attempt_at": None}
        else:
            next_at = now + dt.timedelta(seconds=self._policy.next_delay(attempts))
            if next_at > as_utc(delivery.created_at) + dt.timedelta(seconds=self._policy.window):
                values |= {"status": "failed", "next_attempt_at": None}
            else:
                values["next_attempt_at"] = next_at
        attempt = {
            "delivery_id": delivery.id,
            "at": now,
            "status_code": status_code,
            "error": error,
            "duration_ms": duration_ms,
        }
        await self._db.write(_record_attempt, delivery.id, attempt, values)
        log.info(
            "webhook attempt",
            extra={
                "delivery_id": delivery.id,
                "session_id": delivery.session_id,
                "status_code": status_code,
                "error": error,
                "outcome": values.get("status", "retry"),
            },
        )


def _claim_next(conn: sa.Connection, now: dt.datetime, lease: dt.timedelta) -> sa.Row | None:
    """Lease the longest-due free delivery, or return None if there is none."""
    free = sa.or_(webhook_deliveries.c.locked_until.is_(None), webhook_deliveries.c.locked_until < now)
    due = (
        sa.select(webhook_deliveries, sessions.c.character)
        .join(sessions, sessions.c.id == webhook_deliveries.c.session_id)
        .where(webhook_deliveries.c.status == "pending", webhook_deliveries.c.next_attempt_at <= now, free)
        .order_by(webhook_deliveries.c.next_attempt_at)
        .limit(20)
    )
    # Another token server may lease a candidate between the SELECT and the UPDATE
    # (PostgreSQL); then the next candidate is tried.
    for row in conn.execute(due).all():
        lease_it = webhook_deliveries.update().where(webhook_deliveries.c.id == row.id, free)
        if conn.execute(lease_it.values(locked_until=now + lease)).rowcount == 1:
            return row
    return None


def _record_attempt(
    conn: sa.Connection, delivery_id: str, attempt: dict[str, Any], values: dict[str, Any]
) -> None:
    conn.execute(webhook_attempts.insert().values(**attempt))
    conn.execute(webhook_deliveries.update().where(webhook_deliveries.c.id == delivery_id).values(**values))
