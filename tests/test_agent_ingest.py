"""The ingest client against a small real aiohttp server speaking the ingest contract."""

from __future__ import annotations

import asyncio
import time

import pytest

from agent.ingest import IngestClient
from contract.events import (
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    FormUpdated,
    Metrics,
    SessionEnded,
    Transcript,
)
from testkit.standins.ingest_standin import IngestStandIn
from testkit.standins.mcp_server import free_port
from testkit.waiting import wait_until

pytestmark = pytest.mark.integration

KEY = "devkey"
SECRET = "ingest-test-secret-that-is-32-bytes-or-more"
SID = "sess_ingest_1"


def make_client(url: str, **kwargs) -> IngestClient:
    kwargs.setdefault("initial_backoff", 0.05)
    kwargs.setdefault("max_backoff", 0.2)
    kwargs.setdefault("flush_interval", 0.01)
    return IngestClient(base_url=url, api_key=KEY, api_secret=SECRET, session_id=SID, **kwargs)


@pytest.fixture
def standin() -> IngestStandIn:
    return IngestStandIn(api_key=KEY, api_secret=SECRET)


@pytest.fixture
async def url(aiohttp_server, standin) -> str:
    server = await aiohttp_server(standin.app())
    return str(server.make_url(""))


async def test_events_arrive_in_order_and_signed(url, standin):
    client = make_client(url)
    sent = [Transcript(role="user", text=f"line {i}") for i in range(5)]
    for event in sent:
        client.emit(event)
    await client.aclose()
    assert [e["id"] for e in standin.of(SID)] == [e.id for e in sent]
    assert set(standin.statuses) == {200}
    assert client.sent == 5 and client.pending == 0 and client.dropped == 0


async def test_text_the_token_server_refuses_is_made_sendable_not_lost(url, standin):
    # ANSI escapes from a tool's error text, a NUL: the token server's
    # strict reader would refuse the whole batch, so the worker replaces them
    client = make_client(url)
    client.emit(Transcript(role="agent", text="ok \x1b[31mred\x1b[0m\x00 tab\tkept"))
    client.emit(Transcript(role="user", text="the next line"))
    await client.aclose()
    texts = [e["text"] for e in standin.of(SID)]
    assert texts == ["ok \ufffd[31mred\ufffd[0m\ufffd tab\tkept", "the next line"]
    assert client.dropped == 0


async def test_token_server_briefly_down_loses_nothing_and_retries_same_ids(url, standin):
    standin.fail_next = 3
    client = make_client(url)
    first = [Transcript(role="agent", text=f"hello {i}") for i in range(3)]
    for event in first:
        client.emit(event)
    await wait_until(lambda: standin.of(SID), 5, "the events at the stand-in")
    later = Metrics(llm_ttft_ms=120.0)
    client.emit(later)
    await client.aclose()
    assert standin.statuses[:3] == [503, 503, 503]
    # every retry of the first batch carried exactly the same event ids
    first_ids = [e.id for e in first]
    assert standin.attempts[0] == standin.attempts[1] == standin.attempts[2] == first_ids
    assert [e["id"] for e in standin.of(SID)] == [*first_ids, later.id]


async def test_connection_refused_until_the_server_starts(aiohttp_server, standin):
    port = free_port()
    client = make_client(f"http://127.0.0.1:{port}")
    events = [Transcript(role="user", text=f"early {i}") for i in range(4)]
    for event in events:
        client.emit(event)
    await asyncio.sleep(0.3)  # a few refused attempts
    assert client.pending == 4
    await aiohttp_server(standin.app(), port=port)
    await client.aclose(deadline=5)
    assert [e["id"] for e in standin.of(SID)] == [e.id for e in events]


async def test_duplicates_are_counted_once(url, standin):
    client = make_client(url)
    event = Transcript(role="user", text="again")
    client.emit(event)
    client.emit(event)
    await client.aclose()
    assert len(standin.of(SID)) == 1


@pytest.mark.parametrize("status", [401, 422])
async def test_client_errors_are_not_retried(url, standin, status):
    standin.status_override = status
    client = make_client(url)
    client.emit(Transcript(role="user", text="x"))
    await client.aclose()
    assert standin.statuses == [status]
    assert client.dropped == 1


async def test_wrong_secret_is_refused(url, standin):
    client = IngestClient(
        base_url=url, api_key=KEY, api_secret="another-secret-that-is-32-bytes-long!", session_id=SID
    )
    client.emit(Transcript(role="user", text="x"))
    await client.aclose()
    assert standin.statuses == [401] and client.dropped == 1


async def test_429_is_retried(url, standin):
    standin.status_override = 429
    client = make_client(url)
    client.emit(Transcript(role="user", text="x"))
    await wait_until(lambda: len(standin.statuses) >= 2, 5, "two statuses")
    standin.status_override = None
    await client.aclose()
    assert standin.statuses[-1] == 200 and len(standin.of(SID)) == 1


async def test_session_gone_stops_sending(url, standin):
    standin.ended_sessions.add(SID)
    client = make_client(url)
    client.emit(Transcript(role="user", text="x"))
    await client.aclose()
    client.emit(Transcript(role="user", text="after"))  # never raises
    assert standin.statuses == [409]
    assert client.dropped == 2


async def test_batches_respect_count_and_size_limits(url, standin):
    client = make_client(url, flush_interval=0.05)
    for i in range(MAX_BATCH_EVENTS + 150):
        client.emit(Metrics(turn_id=str(i)))
    big = [Transcript(role="agent", text="y" * 19_000) for _ in range(30)]
    for event in big:
        client.emit(event)
    await client.aclose(deadline=10)
    assert len(standin.of(SID)) == MAX_BATCH_EVENTS + 150 + 30
    assert max(len(b) for b in standin.batches) <= MAX_BATCH_EVENTS
    assert len(standin.batches) >= 3
    assert all(s == 200 for s in standin.statuses)  # nothing over MAX_BATCH_BYTES was sent
    assert MAX_BATCH_BYTES < 30 * 19_000


async def test_full_buffer_drops_oldest_but_never_form_answers_or_the_end(aiohttp_server, standin):
    port = free_port()
    client = make_client(f"http://127.0.0.1:{port}", max_buffered_events=10)
    form = FormUpdated(field="email", value="a@b.co")
    client.emit(form)
    lines = [Transcript(role="user", text=f"t{i}") for i in range(30)]
    for event in lines:
        client.emit(event)
    end = SessionEnded(reason="done")
    client.emit(end)
    assert client.pending <= 11
    assert client.dropped >= 20
    await aiohttp_server(standin.app(), port=port)
    await client.aclose(deadline=5)
    ids = [e["id"] for e in standin.of(SID)]
    assert form.id in ids and end.id in ids
    assert lines[-1].id in ids and lines[0].id not in ids


async def test_close_gives_up_at_the_deadline(standin):
    client = make_client(f"http://127.0.0.1:{free_port()}")
    client.emit(Transcript(role="user", text="lost"))
    started = time.monotonic()
    await client.aclose(deadline=0.5)
    assert time.monotonic() - started < 2.0
    assert client.dropped == 1 and client.pending == 0


async def test_emit_from_another_thread(url, standin):
    client = make_client(url)
    client.start()
    event = Transcript(role="user", text="from a thread")
    await asyncio.to_thread(client.emit, event)
    await asyncio.sleep(0.05)
    await client.aclose()
    assert [e["id"] for e in standin.of(SID)] == [event.id]


async def test_too_large_batches_are_split(url, standin):
    standin.max_bytes = 2_000
    client = make_client(url, flush_interval=0.05)
    events = [Transcript(role="user", text="z" * 150) for _ in range(20)]
    for event in events:
        client.emit(event)
    await client.aclose()
    assert 413 in standin.statuses
    assert [e["id"] for e in standin.of(SID)] == [e.id for e in events]
    assert client.dropped == 0
