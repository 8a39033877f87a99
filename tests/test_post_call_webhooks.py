"""Post-call webhooks: signed, retried with backoff, every attempt on the record."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time

import pytest
import sqlalchemy as sa
from aiohttp import web

from contract.ingest_token import sign_ingest_token
from testkit.livekit_server import API_KEY, API_SECRET
from token_server.app import DB, WEBHOOKS
from token_server.db import webhook_deliveries
from token_server.post_call import PostCallWebhooks, RetryPolicy, sign

pytestmark = pytest.mark.integration

KEY = {"Authorization": "Bearer server-key-1"}
WEBHOOK_SECRET = "whsec-test-0123456789abcdef"


class Receiver:
    """A webhook endpoint on loopback that fails its first `failures` deliveries.

    Each answer takes `delay` seconds: a slow receiver.
    """

    def __init__(self, failures: int, delay: float = 0.0) -> None:
        self.failures = failures
        self.delay = delay
        self.received: list[tuple[dict, bytes, dict]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append((dict(request.headers), body, json.loads(body)))
        failed = len(self.received) <= self.failures
        await asyncio.sleep(self.delay)
        return web.Response(status=503 if failed else 204)


@pytest.fixture
async def receiver_url(aiohttp_server):
    async def make(failures: int, delay: float = 0.0) -> tuple[Receiver, str]:
        receiver = Receiver(failures, delay)
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        server = await aiohttp_server(app)
        return receiver, str(server.make_url("/hook"))

    return make


def character_with_webhook(tmp_path, url: str):
    chars = tmp_path / "hooked"
    chars.mkdir()
    (chars / "hooked.yaml").write_text(
        "slug: hooked\nname: Hooked\nsystem_prompt: hi\nallowed_origins: ['*']\n"
        f"webhook_url: {url}\nwebhook_secret: ${{TEST_WEBHOOK_SECRET}}\n"
        "form:\n  fields:\n    - {name: email, type: email, required: true}\n"
    )
    return chars


async def end_a_session(client) -> str:
    sid = (await (await client.post("/v1/sessions", json={"agent": "hooked"})).json())["session_id"]
    token = sign_ingest_token(API_KEY, API_SECRET, sid)
    events = [
        {"type": "session_started"},
        {"type": "transcript", "role": "agent", "text": "What's your email?"},
        {"type": "transcript", "role": "user", "text": "ana at example dot com"},
        {"type": "form_updated", "field": "email", "value": "ana@example.com"},
        {"type": "session_ended", "reason": "form_complete"},
    ]
    resp = await client.post(
        f"/internal/v1/sessions/{sid}/events",
        json={"events": events},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status == 200
    return sid


async def test_delivered_signed_after_retries(make_client, receiver_url, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", WEBHOOK_SECRET)
    receiver, url = await receiver_url(failures=2)
    client = await make_client(
        characters_dir=character_with_webhook(tmp_path, url),
        webhook_poll_seconds=0.05,
        webhook_retry_base_seconds=0.05,
    )
    sid = await end_a_session(client)
    for _ in range(200):
        record = await (await client.get(f"/v1/sessions/{sid}", headers=KEY)).json()
        if record["webhooks"] and record["webhooks"][0]["status"] == "delivered":
            break
        await asyncio.sleep(0.05)
    (delivery,) = record["webhooks"]
    assert delivery["status"] == "delivered" and delivery["delivered_at"]
    assert [a["status_code"] for a in delivery["attempts"]] == [503, 503, 204]
    assert [a["error"] for a in delivery["attempts"]] == ["HTTP 503", "HTTP 503", None]
    assert len(receiver.received) == 3

    headers, body, payload = receiver.received[-1]
    assert headers["X-Oshara-Event"] == "session.ended"
    assert headers["X-Oshara-Delivery"] == delivery["id"]
    stamp, digest = (p.split("=", 1)[1] for p in headers["X-Oshara-Signature"].split(","))
    expected = hmac.new(WEBHOOK_SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(digest, expected)
    assert abs(int(stamp) - time.time()) < 60
    assert payload["session"]["session_id"] == sid
    assert payload["session"]["end_reason"] == "agent:form_complete"
    assert [t["text"] for t in payload["transcript"]] == ["What's your email?", "ana at example dot com"]
    assert payload["form"]["complete"] and payload["form"]["fields"][0]["value"] == "ana@example.com"
    assert WEBHOOK_SECRET not in body.decode()


async def test_gives_up_after_the_retry_window(make_client, receiver_url, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", WEBHOOK_SECRET)
    receiver, url = await receiver_url(failures=1000)
    client = await make_client(
        characters_dir=character_with_webhook(tmp_path, url), webhook_poll_seconds=3600
    )
    sid = await end_a_session(client)
    app_webhooks = client.app[WEBHOOKS]
    # The same sender, with a window short enough to watch it give up.
    impatient = PostCallWebhooks(
        client.app[DB],
        app_webhooks._http,
        app_webhooks._characters,
        app_webhooks._summary,
        policy=RetryPolicy(base=0.01, cap=0.02, window=0.2),
    )
    for _ in range(100):
        await impatient.deliver_due()
        record = await (await client.get(f"/v1/sessions/{sid}", headers=KEY)).json()
        if record["webhooks"][0]["status"] == "failed":
            break
        await asyncio.sleep(0.02)
    delivery = record["webhooks"][0]
    assert delivery["status"] == "failed"
    assert len(delivery["attempts"]) == len(receiver.received) >= 2
    assert delivery["next_attempt_at"] is None


async def test_no_secret_in_the_environment_is_a_recorded_failure(
    make_client, receiver_url, tmp_path, monkeypatch
):
    monkeypatch.delenv("TEST_WEBHOOK_SECRET", raising=False)
    receiver, url = await receiver_url(failures=0)
    client = await make_client(
        characters_dir=character_with_webhook(tmp_path, url), webhook_poll_seconds=3600
    )
    sid = await end_a_session(client)
    await client.app[WEBHOOKS].deliver_due()
    record = await (await client.get(f"/v1/sessions/{sid}", headers=KEY)).json()
    (attempt,) = record["webhooks"][0]["attempts"]
    assert "environment variable is not set" in attempt["error"]
    assert receiver.received == []


async def test_two_senders_and_a_slow_receiver_post_each_delivery_once(
    make_client, receiver_url, tmp_path, monkeypatch
):
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", WEBHOOK_SECRET)
    # Each answer takes 0.5 s, well inside the 5 s timeout and the 6 s lease, but 16
    # of them take 8 s: longer than a lease, were the lease to cover them all.
    receiver, url = await receiver_url(failures=0, delay=0.5)
    chars = character_with_webhook(tmp_path, url)
    # Two token servers on one database; their own loops stay idle (they poll hourly).
    clients = [await make_client(characters_dir=chars, webhook_poll_seconds=3600) for _ in range(2)]
    sids = [await end_a_session(clients[0]) for _ in range(16)]

    def sender(client) -> PostCallWebhooks:
        webhooks = client.app[WEBHOOKS]
        return PostCallWebhooks(
            client.app[DB],
            webhooks._http,
            webhooks._characters,
            webhooks._summary,
            # A failed attempt would be retried only after the test is over.
            policy=RetryPolicy(base=3600, cap=3600, window=7200),
            timeout_seconds=5.0,
            lease_seconds=6.0,
        )

    async def pending() -> int:
        async with clients[0].app[DB].connect() as conn:
            query = sa.select(sa.func.count()).where(webhook_deliveries.c.status == "pending")
            return (await conn.execute(query)).scalar_one()

    async def send_until_none_pending(webhooks: PostCallWebhooks) -> None:
        while await pending():
            await webhooks.deliver_due()
            await asyncio.sleep(0.05)

    senders = [sender(client) for client in clients]
    await asyncio.wait_for(asyncio.gather(*(send_until_none_pending(s) for s in senders)), 60)

    posted = sorted(headers["X-Oshara-Delivery"] for headers, _, _ in receiver.received)
    deliveries = []
    for sid in sids:
        record = await (await clients[1].get(f"/v1/sessions/{sid}", headers=KEY)).json()
        deliveries += record["webhooks"]
    assert posted == sorted(d["id"] for d in deliveries)
    assert all(d["status"] == "delivered" and len(d["attempts"]) == 1 for d in deliveries)


def test_retry_policy_backs_off_to_its_cap():
    policy = RetryPolicy(base=10, cap=600, window=7200)
    assert [policy.next_delay(n) for n in (1, 2, 3, 4, 7, 20)] == [10, 20, 40, 80, 600, 600]


def test_signature_format():
    assert sign("s", 1700000000, b"{}") == (
        "t=1700000000,v1=" + hmac.new(b"s", b"1700000000.{}", hashlib.sha256).hexdigest()
    )
