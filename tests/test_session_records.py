"""The life of a session record: webhooks, worker reports, sweeps, retrieval."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json

import jwt
import pytest
import sqlalchemy as sa
from google.protobuf.json_format import MessageToJson
from livekit import api
from livekit.protocol import models, webhook

from contract.ingest_token import sign_ingest_token
from testkit.livekit_server import API_KEY, API_SECRET
from testkit.waiting import wait_until
from token_server.app import DB, LIFECYCLE, START
from token_server.db import sessions

pytestmark = pytest.mark.integration

KEY = {"Authorization": "Bearer server-key-1"}
ORIGIN = {"Origin": "https://shop.example.com"}
LOCKED = {"agent": "locked", "metadata": {"name": "Ana"}}  # a limit of 2


async def start(client, body=None, headers=ORIGIN) -> dict:
    resp = await client.post("/v1/sessions", json=body or LOCKED, headers=headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def post_events(client, session_id, events, *, token=None):
    token = token or sign_ingest_token(API_KEY, API_SECRET, session_id)
    return await client.post(
        f"/internal/v1/sessions/{session_id}/events",
        json={"events": events},
        headers={"Authorization": f"Bearer {token}"},
    )


def signed_webhook(event: webhook.WebhookEvent, *, secret=API_SECRET) -> tuple[str, dict]:
    body = MessageToJson(event)
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    token = api.AccessToken(API_KEY, secret).with_sha256(digest).to_jwt()
    return body, {"Authorization": token, "Content-Type": "application/webhook+json"}


def room_event(
    kind: str, room_name: str, *, event_id: str, identity: str = "", agent=False
) -> webhook.WebhookEvent:
    event = webhook.WebhookEvent(event=kind, id=event_id, created_at=1)
    event.room.name = room_name
    if identity:
        event.participant.identity = identity
        if agent:
            event.participant.kind = models.ParticipantInfo.Kind.AGENT
    return event


async def send_webhook(client, event, **kw):
    body, headers = signed_webhook(event, **kw)
    return await client.post("/livekit/webhook", data=body, headers=headers)


async def status_of(client, session_id) -> dict:
    resp = await client.get(f"/v1/sessions/{session_id}", headers=KEY)
    assert resp.status == 200
    return await resp.json()


async def fill_the_limit(client) -> list[dict]:
    sessions_ = [await start(client), await start(client)]
    assert (await client.post("/v1/sessions", json=LOCKED, headers=ORIGIN)).status == 429
    return sessions_


def just_passed() -> dt.datetime:
    """A deadline that has just passed.

    Only just: the server's own first sweep starts with the app and may still be reading
    when a test moves a deadline, and it ends what was already due when it began. A
    deadline set a second back could be due for it too, and the test's own sweep would
    then find nothing left to end.
    """
    return dt.datetime.now(dt.UTC) - dt.timedelta(milliseconds=10)


async def set_times(client, session_id, **values):
    async with client.app[DB].engine.begin() as conn:
        await conn.execute(sessions.update().where(sessions.c.id == session_id).values(**values))


# --- lifecycle paths, each freeing the slot ---------------------------------------------


async def test_webhooks_move_a_session_to_active_then_ended(client):
    first, _ = await fill_the_limit(client)
    room = first["room_name"]
    event = room_event("participant_joined", room, event_id="EV_join", identity=first["participant_identity"])
    assert (await send_webhook(client, event)).status == 200
    record = await status_of(client, first["session_id"])
    assert record["status"] == "active" and record["joined_at"]
    assert (await send_webhook(client, room_event("room_finished", room, event_id="EV_fin"))).status == 200
    record = await status_of(client, first["session_id"])
    assert record["status"] == "ended" and record["end_reason"] == "room_finished"
    assert [h["status"] for h in record["history"]] == ["pending", "active", "ended"]
    assert all(h["at"] and h["reason"] for h in record["history"])
    assert (await client.post("/v1/sessions", json=LOCKED, headers=ORIGIN)).status == 201


async def test_agent_reporting_the_end_frees_the_slot(client):
    first, _ = await fill_the_limit(client)
    usage = {
        "audio_seconds_in": 12.5,
        "audio_seconds_out": 9.0,
        "llm_prompt_tokens": 300,
        "llm_completion_tokens": 80,
        "tts_characters": 240,
    }
    resp = await post_events(
        client,
        first["session_id"],
        [
            {"type": "session_started"},
            {"type": "session_ended", "reason": "user_said_goodbye", "usage": usage},
        ],
    )
    assert resp.status == 200
    record = await status_of(client, first["session_id"])
    assert record["status"] == "ended"
    assert record["end_reason"] == "agent:user_said_goodbye"
    assert record["usage"] == usage
    assert (await client.post("/v1/sessions", json=LOCKED, headers=ORIGIN)).status == 201


async def test_nobody_joining_ends_the_session(client):
    first, _ = await fill_the_limit(client)
    await set_times(client, first["session_id"], join_deadline=just_passed())
    assert await client.app[LIFECYCLE].sweep() == 1
    record = await status_of(client, first["session_id"])
    assert (record["status"], record["end_reason"]) == ("ended", "join_timeout")
    assert (await client.post("/v1/sessions", json=LOCKED, headers=ORIGIN)).status == 201


async def test_passing_the_maximum_duration_ends_the_session_and_closes_the_room(client, livekit):
    first, second = await fill_the_limit(client)
    await post_events(client, first["session_id"], [{"type": "session_started"}])
    await set_times(client, first["session_id"], max_end_at=just_passed())
    assert await client.app[LIFECYCLE].sweep() == 1
    record = await status_of(client, first["session_id"])
    assert (record["status"], record["end_reason"]) == ("ended", "max_duration")
    assert list(await livekit.new_rooms()) == [second["room_name"]]  # its room alone is closed
    assert (await client.post("/v1/sessions", json=LOCKED, headers=ORIGIN)).status == 201


async def test_an_agent_without_its_user_still_ends_at_the_join_deadline(client, livekit):
    first, second = await fill_the_limit(client)
    room = first["room_name"]
    # The agent arrives (its report and LiveKit's webhook): active, but no user yet.
    await post_events(client, first["session_id"], [{"type": "session_started"}])
    agent = room_event("participant_joined", room, event_id="EV_agent", identity="agent-1", agent=True)
    assert (await send_webhook(client, agent)).status == 200
    assert (await status_of(client, first["session_id"]))["status"] == "active"
    await set_times(client, first["session_id"], join_deadline=just_passed())
    assert await client.app[LIFECYCLE].sweep() == 1
    record = await status_of(client, first["session_id"])
    assert (record["status"], record["end_reason"]) == ("ended", "join_timeout")
    assert list(await livekit.new_rooms()) == [second["room_name"]]  # the waiting agent is sent away
    assert (await client.post("/v1/sessions", json=LOCKED, headers=ORIGIN)).status == 201


async def test_an_agent_leaving_without_ending_ends_the_session_and_closes_the_room(client, livekit):
    first, second = await fill_the_limit(client)
    room = first["room_name"]
    user = room_event("participant_joined", room, event_id="EV_user", identity=first["participant_identity"])
    assert (await send_webhook(client, user)).status == 200
    # a user leaving is not the end: the agent's report or room_finished says so
    gone = room_event("participant_left", room, event_id="EV_user_left", identity="someone-else")
    assert (await send_webhook(client, gone)).status == 200
    assert (await status_of(client, first["session_id"]))["status"] == "active"
    # the agent's worker died: LiveKit says it left, and the user is not left in a silent room
    left = room_event("participant_left", room, event_id="EV_agent_left", identity="agent-1", agent=True)
    assert (await send_webhook(client, left)).status == 200
    record = await status_of(client, first["session_id"])
    assert (record["status"], record["end_reason"]) == ("ended", "agent_left")
    assert list(await livekit.new_rooms()) == [second["room_name"]]
    assert (await client.post("/v1/sessions", json=LOCKED, headers=ORIGIN)).status == 201


async def test_an_agent_leaving_after_its_report_changes_nothing(client, livekit):
    first, second = await fill_the_limit(client)
    room = first["room_name"]
    await post_events(client, first["session_id"], [{"type": "session_ended", "reason": "user said bye"}])
    left = room_event("participant_left", room, event_id="EV_agent_left", identity="agent-1", agent=True)
    assert (await send_webhook(client, left)).status == 200
    record = await status_of(client, first["session_id"])
    assert record["end_reason"] == "agent:user said bye"
    assert sorted(await livekit.new_rooms()) == sorted([first["room_name"], second["room_name"]])


@pytest.mark.parametrize("how", ["report", "webhook"])
async def test_once_the_user_joins_the_join_deadline_no_longer_applies(client, how):
    first = await start(client)
    if how == "report":
        await post_events(client, first["session_id"], [{"type": "user_joined", "identity": "user-1"}])
    else:
        event = room_event("participant_joined", first["room_name"], event_id="EV_u", identity="user-1")
        assert (await send_webhook(client, event)).status == 200
    await set_times(client, first["session_id"], join_deadline=just_passed())
    assert await client.app[LIFECYCLE].sweep() == 0
    record = await status_of(client, first["session_id"])
    assert record["status"] == "active" and record["user_joined_at"]


async def test_an_agent_that_never_joins_ends_the_session_and_closes_the_room(make_client, livekit):
    # LiveKit dropped the dispatch (no worker had capacity): the user joined and waits for nobody.
    client = await make_client(agent_join_timeout_seconds=5)
    first, second = await fill_the_limit(client)
    row = await client.app[START].store.get(first["session_id"])
    assert row.agent_deadline - row.created_at == dt.timedelta(seconds=5)
    user = room_event("participant_joined", first["room_name"], event_id="EV_u", identity="user-1")
    assert (await send_webhook(client, user)).status == 200
    assert (await status_of(client, first["session_id"]))["status"] == "active"
    await set_times(client, first["session_id"], agent_deadline=just_passed())
    assert await client.app[LIFECYCLE].sweep() == 1
    record = await status_of(client, first["session_id"])
    assert (record["status"], record["end_reason"]) == ("ended", "agent_unavailable")
    assert record["agent_joined_at"] is None and record["user_joined_at"]
    assert list(await livekit.new_rooms()) == [second["room_name"]]  # the user's call is closed
    assert (await client.post("/v1/sessions", json=LOCKED, headers=ORIGIN)).status == 201


async def test_a_missing_agent_names_the_end_when_the_user_is_missing_too(client, clock):
    first = await start(client)
    clock.advance(3600 + 1)  # past the agent's deadline, the join window and the maximum duration
    assert await client.app[LIFECYCLE].sweep() == 1
    assert (await status_of(client, first["session_id"]))["end_reason"] == "agent_unavailable"


@pytest.mark.parametrize("how", ["report", "webhook"])
async def test_once_the_agent_joins_the_agent_deadline_no_longer_applies(client, livekit, how):
    first, second = await fill_the_limit(client)

    async def agent_joins(event_id: str) -> None:
        if how == "report":
            resp = await post_events(client, first["session_id"], [{"type": "session_started"}])
        else:
            event = room_event(
                "participant_joined", first["room_name"], event_id=event_id, identity="agent-1", agent=True
            )
            resp = await send_webhook(client, event)
        assert resp.status == 200

    await agent_joins("EV_a1")
    joined = (await status_of(client, first["session_id"]))["agent_joined_at"]
    assert joined
    await agent_joins("EV_a2")  # a second arrival keeps the first time
    await set_times(client, first["session_id"], agent_deadline=just_passed())
    assert await client.app[LIFECYCLE].sweep() == 0
    record = await status_of(client, first["session_id"])
    assert record["status"] == "active" and record["agent_joined_at"] == joined
    assert record["user_joined_at"] is None  # the agent's arrival is not the user's
    assert sorted(await livekit.new_rooms()) == sorted([first["room_name"], second["room_name"]])


async def test_the_sweeper_runs_by_itself_and_survives_a_restart(make_client):
    client = await make_client()
    first, _ = await fill_the_limit(client)
    await set_times(client, first["session_id"], join_deadline=just_passed())
    await client.close()  # the server stops with the session still pending
    restarted = await make_client(sweep_interval_seconds=0.05)

    async def ended() -> bool:
        return (await status_of(restarted, first["session_id"]))["status"] == "ended"

    await wait_until(ended, 10, "the restarted server's sweep to end the session")
    assert (await status_of(restarted, first["session_id"]))["end_reason"] == "join_timeout"
    assert (await restarted.post("/v1/sessions", json=LOCKED, headers=ORIGIN)).status == 201


async def test_ending_twice_is_harmless(client):
    first = await start(client)
    room = first["room_name"]
    for event_id in ("EV_a", "EV_a", "EV_b"):
        assert (
            await send_webhook(client, room_event("room_finished", room, event_id=event_id))
        ).status == 200
    await post_events(client, first["session_id"], [{"type": "session_ended", "reason": "late"}])
    record = await status_of(client, first["session_id"])
    assert [h["status"] for h in record["history"]] == ["pending", "ended"]
    assert record["end_reason"] == "room_finished"


# --- LiveKit webhook signatures ---------------------------------------------------------


async def test_webhook_with_a_bad_signature_changes_nothing(client):
    first = await start(client)
    event = room_event("room_finished", first["room_name"], event_id="EV_x")
    resp = await send_webhook(client, event, secret="another-secret-of-enough-length-for-hs256")
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "invalid_signature"
    body, headers = signed_webhook(event)
    tampered = body.replace("room_finished", "room_started")
    assert (await client.post("/livekit/webhook", data=tampered, headers=headers)).status == 401
    assert (await client.post("/livekit/webhook", data=body)).status == 401
    assert (await status_of(client, first["session_id"]))["status"] == "pending"


def sign_bytes(body: bytes, *, secret=API_SECRET) -> str:
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    return api.AccessToken(API_KEY, secret).with_sha256(digest).to_jwt()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (
            '{"event": "room_finished", "room": {"name": "caf\xe9"}}'.encode("latin-1"),
            "application/webhook+json",
        ),
        (b'{"event": "room_finished", "id": "\xff\xfe"}', "application/webhook+json"),
        (b"\xef\xbb\xbf\xc3(", "application/webhook+json; charset=utf-8"),
        (b'{"event": "room_finished"}', "application/webhook+json; charset=x-no-such-charset"),
        ("{}".encode("utf-16"), "application/webhook+json; charset=utf-16"),
        (b"not json", "text/plain; charset=klingon"),
    ],
)
async def test_webhook_bodies_are_checked_as_bytes_before_anything_is_decoded(client, body, content_type):
    # Unsigned (or signed with another secret): 401, whatever the bytes or charset.
    for auth in ("", sign_bytes(body, secret="another-secret-of-enough-length-for-hs256")):
        resp = await client.post(
            "/livekit/webhook", data=body, headers={"Content-Type": content_type, "Authorization": auth}
        )
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "invalid_signature"
    # Signed over these exact bytes: a LiveKit event in UTF-8 JSON is taken, anything else is a 400.
    resp = await client.post(
        "/livekit/webhook",
        data=body,
        headers={"Content-Type": content_type, "Authorization": sign_bytes(body)},
    )
    try:
        body.decode("utf-8")
        json.loads(body)
        decodes = True
    except ValueError:
        decodes = False
    if decodes:
        assert resp.status == 200, await resp.text()
    else:
        assert resp.status == 400, await resp.text()
        assert (await resp.json())["error"]["code"] == "invalid_json"


async def test_webhook_for_an_unknown_room_is_ignored(client):
    resp = await send_webhook(client, room_event("room_finished", "not-ours", event_id="EV_y"))
    assert resp.status == 200
    assert (await resp.json())["session"] is None


# --- worker ingest -----------------------------------------------------------------------


async def test_ingest_rejects_bad_tokens(client):
    first, second = await start(client), await start(client)
    sid = first["session_id"]
    wrong_secret = sign_ingest_token(API_KEY, "x" * 40, sid)
    wrong_key = sign_ingest_token("otherkey", API_SECRET, sid)
    other_session = sign_ingest_token(API_KEY, API_SECRET, second["session_id"])
    expired = jwt.encode(
        {"iss": API_KEY, "sub": sid, "aud": "oshara-ingest", "exp": 1000},
        API_SECRET,
        algorithm="HS256",
    )
    # A LiveKit join token is signed with the same secret but is not an ingest token.
    join_token = first["token"]
    for token in (wrong_secret, wrong_key, other_session, expired, join_token):
        resp = await post_events(client, sid, [{"type": "session_started"}], token=token)
        assert resp.status == 401, token
    resp = await client.post(
        f"/internal/v1/sessions/{sid}/events", json={"events": [{"type": "session_started"}]}
    )
    assert resp.status == 401
    assert (await status_of(client, sid))["status"] == "pending"


async def test_a_retried_batch_is_stored_once(client):
    sid = (await start(client))["session_id"]
    batch = [
        {
            "id": "e1",
            "type": "transcript",
            "role": "user",
            "text": "Hello?",
            "start_time": 0.1,
            "end_time": 0.9,
        },
        {
            "id": "e2",
            "type": "transcript",
            "role": "agent",
            "text": "Hi Ana!",
            "start_time": 1.2,
            "end_time": 2.0,
        },
    ]
    first = await (await post_events(client, sid, batch)).json()
    again = await (await post_events(client, sid, batch)).json()
    assert first == {"accepted": 2, "duplicates": 0}
    assert again == {"accepted": 0, "duplicates": 2}
    logs = await (await client.get(f"/v1/sessions/{sid}/logs", headers=KEY)).json()
    assert [e["id"] for e in logs["events"]] == ["e1", "e2"]


async def test_every_event_type_is_stored_in_order(client):
    sid = (await start(client))["session_id"]
    events = [
        {"type": "session_started", "agent_version": "1.0"},
        {"type": "transcript", "role": "user", "text": "Look up my order", "interrupted": False},
        {
            "type": "tool_call",
            "server": "crm",
            "tool": "lookup",
            "duration_ms": 12.5,
            "ok": True,
            "arguments": {"order": "A1", "api_key": "sk-should-not-be-kept"},
        },
        {"type": "form_updated", "field": "full_name", "value": "Ana Lima"},
        {
            "type": "metrics",
            "turn_id": "t1",
            "end_of_turn_delay_ms": 310.0,
            "transcription_delay_ms": 120.0,
            "llm_ttft_ms": 400.0,
            "tts_ttfb_ms": 150.0,
            "e2e_latency_ms": 870.0,
        },
        {"type": "error", "source": "tts", "message": "voice service timed out", "recoverable": True},
    ]
    assert (await post_events(client, sid, events)).status == 200
    logs = await (await client.get(f"/v1/sessions/{sid}/logs", headers=KEY)).json()
    assert [e["type"] for e in logs["events"]] == [e["type"] for e in events]
    tool = logs["events"][2]
    assert tool["arguments"] == {"order": "A1", "api_key": "[redacted]"}
    only = await (await client.get(f"/v1/sessions/{sid}/logs?types=metrics,error", headers=KEY)).json()
    assert [e["type"] for e in only["events"]] == ["metrics", "error"]


async def test_secrets_nested_in_tool_arguments_are_not_stored(client):
    sid = (await start(client))["session_id"]
    arguments = {
        "order": "A1",
        "auth": {"api_key": "sk-nested", "user": "ana"},
        "calls": [{"headers": {"Authorization": "Bearer sk-in-list"}}, {"X-Access-Token": "sk-dashed"}],
        "deep": [[[{"password": "sk-deep"}]]],
    }
    event = {"type": "tool_call", "tool": "lookup", "duration_ms": 1.0, "ok": True, "arguments": arguments}
    assert (await post_events(client, sid, [event])).status == 200
    logs = await (await client.get(f"/v1/sessions/{sid}/logs", headers=KEY)).text()
    assert "sk-" not in logs
    stored = json.loads(logs)["events"][0]["arguments"]
    assert stored == {
        "order": "A1",
        "auth": {"api_key": "[redacted]", "user": "ana"},
        "calls": [{"headers": {"Authorization": "[redacted]"}}, {"X-Access-Token": "[redacted]"}],
        "deep": [[[{"password": "[redacted]"}]]],
    }


async def test_ingest_limits(client):
    sid = (await start(client))["session_id"]
    too_many = [{"type": "metrics"} for _ in range(501)]
    resp = await post_events(client, sid, too_many)
    assert resp.status == 413 and (await resp.json())["error"]["code"] == "too_many_events"
    big = [{"type": "transcript", "role": "user", "text": "x" * 19_000} for _ in range(15)]
    assert (await post_events(client, sid, big)).status == 413
    bad = [{"type": "transcript", "role": "narrator", "text": "hi"}, {"type": "nonsense"}]
    resp = await post_events(client, sid, bad)
    assert resp.status == 422
    fields = [d["field"] for d in (await resp.json())["error"]["details"]]
    assert any(f.startswith("events.0") for f in fields) and any(f.startswith("events.1") for f in fields)
    assert (await post_events(client, sid, [])).status == 422


async def test_unknown_session_is_404(client):
    resp = await post_events(client, "ses_nope", [{"type": "session_started"}])
    assert resp.status == 404


async def test_late_events_accepted_for_ten_minutes_then_409(client, clock):
    sid = (await start(client))["session_id"]
    await post_events(client, sid, [{"type": "session_ended", "reason": "done"}])
    late = [{"type": "transcript", "role": "agent", "text": "Goodbye!"}]
    clock.advance(9 * 60)
    assert (await post_events(client, sid, late)).status == 200
    clock.advance(2 * 60)
    resp = await post_events(client, sid, [{"type": "transcript", "role": "agent", "text": "Too late"}])
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "session_closed"


# --- retrieval ---------------------------------------------------------------------------


async def test_retrieval_needs_an_api_key(client):
    sid = (await start(client))["session_id"]
    for path in (
        f"/v1/sessions/{sid}",
        f"/v1/sessions/{sid}/logs",
        f"/v1/sessions/{sid}/form",
        "/v1/sessions",
    ):
        assert (await client.get(path)).status == 401
        assert (await client.get(path, headers={"Authorization": "Bearer wrong"})).status == 401
    assert (await client.get("/v1/sessions/ses_unknown", headers=KEY)).status == 404


async def test_session_record_shows_everything_but_secrets(client):
    body = {
        "agent": "helper",
        "metadata": {"user_name": "Ana"},
        "origin_url": "https://shop.example.com/p",
        "mcp_headers": {"Authorization": "Bearer sk-record-secret"},
    }
    started = await start(client, body, headers={**ORIGIN, **KEY})
    record = await status_of(client, started["session_id"])
    assert record["character"] == "helper"
    assert record["origin"] == "https://shop.example.com"
    assert record["origin_url"] == "https://shop.example.com/p"
    assert record["metadata"] == {"user_name": "Ana"}
    assert record["unverified_metadata"] == {}
    assert record["config"]["greeting"] == "Hello Ana!"
    assert record["form"]["has_form"] and not record["form"]["complete"]
    text = await (await client.get(f"/v1/sessions/{started['session_id']}", headers=KEY)).text()
    assert "sk-record-secret" not in text


async def test_form_answers(client):
    sid = (await start(client, {"agent": "helper"}))["session_id"]
    await post_events(client, sid, [{"type": "form_updated", "field": "plan", "value": "basic"}])
    form = await (await client.get(f"/v1/sessions/{sid}/form", headers=KEY)).json()
    assert not form["complete"]
    await post_events(
        client,
        sid,
        [
            {"type": "form_updated", "field": "full_name", "value": "Ana Lima"},
            {"type": "form_updated", "field": "plan", "value": "pro"},
        ],
    )
    form = await (await client.get(f"/v1/sessions/{sid}/form", headers=KEY)).json()
    assert form["complete"]
    by_name = {f["name"]: f for f in form["fields"]}
    assert by_name["full_name"]["value"] == "Ana Lima" and by_name["full_name"]["filled"]
    assert by_name["plan"]["value"] == "pro" and by_name["plan"]["updated_at"]


async def test_logs_page_through_ten_thousand_events(client):
    sid = (await start(client))["session_id"]
    for batch in range(20):
        events = [
            {
                "id": f"{batch:02d}-{i:03d}",
                "type": "transcript",
                "role": "user",
                "text": f"utterance {batch}-{i}",
            }
            for i in range(500)
        ]
        assert (await post_events(client, sid, events)).status == 200
    seen, cursor, pages = [], None, 0
    while True:
        url = f"/v1/sessions/{sid}/logs?limit=1000" + (f"&cursor={cursor}" if cursor else "")
        page = await (await client.get(url, headers=KEY)).json()
        seen.extend(e["id"] for e in page["events"])
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 10_000 and seen == sorted(seen)
    assert pages in (10, 11)


async def test_session_list_filters_and_pages(client):
    ids = [(await start(client, {"agent": "helper"}))["session_id"] for _ in range(5)]
    await post_events(client, ids[0], [{"type": "session_ended", "reason": "done"}])
    page1 = await (await client.get("/v1/sessions?character=helper&limit=3", headers=KEY)).json()
    page2 = await (
        await client.get(f"/v1/sessions?character=helper&limit=3&cursor={page1['next_cursor']}", headers=KEY)
    ).json()
    listed = [s["session_id"] for s in page1["sessions"] + page2["sessions"]]
    assert sorted(listed) == sorted(ids) and len(set(listed)) == 5
    assert page2["next_cursor"] is None
    ended = await (await client.get("/v1/sessions?status=ended", headers=KEY)).json()
    assert [s["session_id"] for s in ended["sessions"]] == [ids[0]]
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    assert (await (await client.get("/v1/sessions", params={"since": future}, headers=KEY)).json())[
        "sessions"
    ] == []
    for bad in ("limit=0", "limit=x", "status=gone", "since=yesterday", "cursor=%%%"):
        assert (await client.get(f"/v1/sessions?{bad}", headers=KEY)).status == 422


async def test_every_status_change_is_recorded(client):
    sid = (await start(client))["session_id"]
    async with client.app[DB].connect() as conn:
        from token_server.db import session_status_changes

        rows = (
            await conn.execute(
                sa.select(session_status_changes).where(session_status_changes.c.session_id == sid)
            )
        ).all()
    assert [(r.status, r.reason) for r in rows] == [("pending", "room_created")]
