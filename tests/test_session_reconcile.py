"""Reconciling live sessions with the rooms LiveKit still has.

A restarted livekit-server loses its rooms without a `room_finished` webhook; the
token server asks ListRooms and ends the sessions whose room is gone. On the run's real
server a room is lost by closing it behind the token server's back (that server sends
no webhooks). The stand-in serves the tests that lose every room at once, make ListRooms
fail or stall, or check which rooms the token server asked about.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import aiohttp
import pytest
from livekit import api
from livekit.protocol import room
from pydantic import ValidationError

from contract.ingest_token import sign_ingest_token
from testkit.livekit_server import API_KEY, API_SECRET
from tests.test_session_records import KEY, LOCKED, ORIGIN, start
from token_server.app import DB, LIFECYCLE, START
from token_server.db import sessions, webhook_deliveries
from token_server.livekit import LIST_ROOMS_BATCH, LiveKitRooms
from token_server.settings import Settings

pytestmark = pytest.mark.integration


async def fill_the_limit(client) -> list[dict]:
    both = [await start(client), await start(client)]
    assert (await client.post("/v1/sessions", json=LOCKED, headers=ORIGIN)).status == 429
    return both


async def age(client, *started: dict, seconds: float | None = None) -> None:
    """Move sessions' creation back by `seconds`, by default to just past the grace period.

    Just past it: a reconcile pass that began before this (each token server runs one as
    it starts, which may still be reading) still finds them too young, and every pass
    that begins after finds them old enough.
    """
    if seconds is None:
        seconds = client.app[START].settings.reconcile_grace_seconds + 0.001
    created = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
    ids = [s["session_id"] for s in started]
    async with client.app[DB].engine.begin() as conn:
        await conn.execute(sessions.update().where(sessions.c.id.in_(ids)).values(created_at=created))


async def record_of(client, session_id) -> dict:
    resp = await client.get(f"/v1/sessions/{session_id}", headers=KEY)
    assert resp.status == 200
    return await resp.json()


async def lose_room(livekit, name: str) -> None:
    """Close a room on the real server unannounced, as a restart loses it: no webhook says so."""
    await livekit.api.room.delete_room(api.DeleteRoomRequest(room=name))
    assert not await livekit.exists(name)


async def agent_joins(client, session_id) -> None:
    token = sign_ingest_token(API_KEY, API_SECRET, session_id)
    resp = await client.post(
        f"/internal/v1/sessions/{session_id}/events",
        json={"events": [{"type": "session_started"}]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status == 200


async def test_sessions_whose_rooms_vanished_are_ended_and_free_their_slots(
    make_client, livekit_standin_url, livekit_state
):
    client = await make_client(livekit_api_url=livekit_standin_url)
    first, second = await fill_the_limit(client)
    await agent_joins(client, first["session_id"])  # one active, one pending: both live
    await age(client, first, second)
    livekit_state.restart()

    assert await client.app[LIFECYCLE].reconcile() == 2

    for started, history in ((first, ["pending", "active", "ended"]), (second, ["pending", "ended"])):
        record = await record_of(client, started["session_id"])
        assert (record["status"], record["end_reason"]) == ("ended", "room_vanished")
        assert record["ended_at"]
        assert [h["status"] for h in record["history"]] == history
        assert record["history"][-1]["reason"] == "room_vanished"
    # One ListRooms for the pass, filtered by the live sessions' rooms.
    (listed,) = livekit_state.listed
    assert sorted(listed.names) == sorted([first["room_name"], second["room_name"]])
    assert livekit_state.deleted == []  # nothing left to close
    await start(client)
    await start(client)
    assert (await client.post("/v1/sessions", json=LOCKED, headers=ORIGIN)).status == 429
    # The next pass finds the ended sessions no longer live.
    assert await client.app[LIFECYCLE].reconcile() == 0


async def test_a_session_whose_room_still_exists_is_untouched(client, livekit):
    lost, kept = await fill_the_limit(client)
    await agent_joins(client, kept["session_id"])
    await age(client, lost, kept)
    await lose_room(livekit, lost["room_name"])

    assert await client.app[LIFECYCLE].reconcile() == 1

    assert (await record_of(client, lost["session_id"]))["end_reason"] == "room_vanished"
    record = await record_of(client, kept["session_id"])
    assert record["status"] == "active" and record["ended_at"] is None
    assert [h["status"] for h in record["history"]] == ["pending", "active"]
    assert await livekit.exists(kept["room_name"])
    # Exactly one slot came back.
    await start(client)
    assert (await client.post("/v1/sessions", json=LOCKED, headers=ORIGIN)).status == 429


@pytest.mark.parametrize("failure", ["unavailable", "denied", "stalled"])
async def test_listrooms_failing_ends_nothing(
    make_client, livekit_standin_url, livekit_state, caplog, failure
):
    client = await make_client(livekit_api_url=livekit_standin_url, livekit_timeout_seconds=0.2)
    both = await fill_the_limit(client)
    await age(client, *both)
    livekit_state.restart()
    if failure == "unavailable":
        livekit_state.list_fail_status = 503
    elif failure == "denied":
        livekit_state.list_fail_status = 403
    else:
        livekit_state.delay_seconds = 1.0
    caplog.set_level(logging.INFO, logger="token_server")
    caplog.clear()  # what the pass logs, not start-up's

    assert await client.app[LIFECYCLE].reconcile() == 0

    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in warnings] == ["livekit did not list rooms"]
    for started in both:
        record = await record_of(client, started["session_id"])
        assert record["status"] == "pending" and len(record["history"]) == 1
    assert (await client.post("/v1/sessions", json=LOCKED, headers=ORIGIN)).status == 429

    # Once LiveKit answers again, the lost rooms are noticed.
    livekit_state.list_fail_status = None
    livekit_state.delay_seconds = 0.0
    assert await client.app[LIFECYCLE].reconcile() == 2


async def test_a_just_created_session_is_not_ended(make_client, livekit_standin_url, livekit_state):
    client = await make_client(livekit_api_url=livekit_standin_url)
    old, new = await fill_the_limit(client)
    await age(client, old)
    # Younger than the grace period: its start might still be waiting for CreateRoom.
    await age(client, new, seconds=5)
    livekit_state.restart()

    assert await client.app[LIFECYCLE].reconcile() == 1

    assert (await record_of(client, old["session_id"]))["end_reason"] == "room_vanished"
    assert (await record_of(client, new["session_id"]))["status"] == "pending"
    (listed,) = livekit_state.listed
    assert list(listed.names) == [old["room_name"]]  # the young session was not even asked about


async def test_no_live_sessions_no_listrooms_call(make_client, livekit_standin_url, livekit_state):
    client = await make_client(livekit_api_url=livekit_standin_url)
    await start(client)  # too young to be asked about
    assert await client.app[LIFECYCLE].reconcile() == 0
    assert livekit_state.listed == []  # an unfiltered ListRooms would list every room


async def test_a_vanished_session_queues_its_post_call_webhook(make_client, livekit, tmp_path):
    chars = tmp_path / "hooked"
    chars.mkdir()
    (chars / "hooked.yaml").write_text(
        "slug: hooked\nname: Hooked\nsystem_prompt: hi\nallowed_origins: ['*']\n"
        "webhook_url: https://hooks.test.invalid/ended\n"
    )
    # Deliveries are not attempted during the test; only the queueing is checked.
    client = await make_client(characters_dir=chars, webhook_poll_seconds=3600)
    started = await start(client, {"agent": "hooked"})
    await age(client, started)
    await lose_room(livekit, started["room_name"])

    assert await client.app[LIFECYCLE].reconcile() == 1

    async with client.app[DB].connect() as conn:
        rows = (await conn.execute(webhook_deliveries.select())).all()
    assert [(r.session_id, r.url, r.status) for r in rows] == [
        (started["session_id"], "https://hooks.test.invalid/ended", "pending")
    ]


async def test_two_token_servers_reconciling_at_once_end_each_session_once(make_client, livekit):
    one = await make_client()
    other = await make_client()  # the same database and LiveKit
    both = await fill_the_limit(one)
    await age(one, *both)
    for started in both:
        await lose_room(livekit, started["room_name"])

    ended = await asyncio.gather(*(c.app[LIFECYCLE].reconcile() for c in (one, other, one, other)))

    assert sum(ended) == 2
    for started in both:
        history = (await record_of(other, started["session_id"]))["history"]
        assert [h["status"] for h in history] == ["pending", "ended"]
    await start(other)
    await start(one)
    assert (await other.post("/v1/sessions", json=LOCKED, headers=ORIGIN)).status == 429


async def test_the_reconciler_runs_by_itself(make_client, livekit):
    client = await make_client(reconcile_interval_seconds=0.05)
    first, _ = await fill_the_limit(client)
    await age(client, first)
    await lose_room(livekit, first["room_name"])
    for _ in range(100):
        if (await record_of(client, first["session_id"]))["status"] == "ended":
            break
        await asyncio.sleep(0.05)
    assert (await record_of(client, first["session_id"]))["end_reason"] == "room_vanished"
    assert (await client.post("/v1/sessions", json=LOCKED, headers=ORIGIN)).status == 201


async def test_many_rooms_are_asked_about_in_batches(make_settings, livekit_standin_url, livekit_state):
    names = [f"oshara-many-{i:04d}" for i in range(2 * LIST_ROOMS_BATCH + 50)]
    kept = set(names[::7])
    for name in kept:
        livekit_state.rooms[name] = room.CreateRoomRequest(name=name)
    async with aiohttp.ClientSession() as http:
        rooms = LiveKitRooms(make_settings(livekit_api_url=livekit_standin_url), http)
        assert await rooms.existing_rooms(names) == kept
    assert [len(r.names) for r in livekit_state.listed] == [LIST_ROOMS_BATCH, LIST_ROOMS_BATCH, 50]


def test_the_grace_period_must_outlast_a_create_room():
    with pytest.raises(ValidationError, match="RECONCILE_GRACE_SECONDS"):
        Settings(_env_file=None, livekit_timeout_seconds=30, reconcile_grace_seconds=30)
