"""Hostile JSON in the worker's event batches: refused whole, before anything is stored."""

from __future__ import annotations

import json

import pytest

from contract.ingest_token import sign_ingest_token
from testkit.livekit_server import API_KEY, API_SECRET

pytestmark = pytest.mark.integration

KEY = {"Authorization": "Bearer server-key-1"}
ORIGIN = {"Origin": "https://shop.example.com"}


async def start(client) -> str:
    resp = await client.post("/v1/sessions", json={"agent": "helper"}, headers=ORIGIN)
    assert resp.status == 201, await resp.text()
    return (await resp.json())["session_id"]


async def post_raw(client, session_id: str, body: str):
    token = sign_ingest_token(API_KEY, API_SECRET, session_id)
    return await client.post(
        f"/internal/v1/sessions/{session_id}/events",
        data=body.encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )


async def error_of(resp, status: int) -> dict:
    assert resp.status == status, await resp.text()
    err = (await resp.json())["error"]
    assert set(err) == {"code", "message", "details"}
    return err


async def stored(client, session_id: str) -> list[dict]:
    resp = await client.get(f"/v1/sessions/{session_id}/logs", headers=KEY)
    assert resp.status == 200
    # The logs are strict JSON: a stored NaN would fail here.
    return json.loads(await resp.text(), parse_constant=lambda name: pytest.fail(f"{name} in the logs"))[
        "events"
    ]


def nested(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
async def test_a_non_finite_number_in_an_event_is_400_and_nothing_is_stored(client, number):
    sid = await start(client)
    tool = '{"type": "tool_call", "tool": "t", "duration_ms": 1, "ok": true, "arguments": {"n": '
    body = '{"events": [{"type": "metrics", "llm_ttft_ms": ' + number + "}, " + tool + number + "}}]}"
    err = await error_of(await post_raw(client, sid, body), 400)
    assert err["code"] == "non_finite_number"
    assert await stored(client, sid) == []


@pytest.mark.parametrize(
    ("event", "key"),
    [
        ('{"id": "e1", "id": "e2", "type": "session_started"}', "id"),
        (
            '{"type": "tool_call", "tool": "t", "duration_ms": 1, "ok": true, '
            '"arguments": {"customer": "me", "customer": "someone-else"}}',
            "customer",
        ),
    ],
)
async def test_a_key_given_twice_in_an_event_is_400_naming_it(client, event, key):
    sid = await start(client)
    err = await error_of(await post_raw(client, sid, '{"events": [' + event + "]}"), 400)
    assert err["code"] == "duplicate_key" and repr(key) in err["message"]
    assert await stored(client, sid) == []


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"type": "transcript", "role": "user", "text": "hi\x00"}, "events.0.text"),
        ({"type": "error", "source": "mcp", "message": "\x1b[31mfailed"}, "events.0.message"),
        (
            {"type": "tool_call", "tool": "t", "duration_ms": 1, "ok": True, "arguments": {"q": ["\x00"]}},
            "events.0.arguments.q.0",
        ),
        ({"type": "form_updated", "field": "name", "value": {"k\x00": "v"}}, "events.0.value"),
    ],
)
async def test_a_control_character_in_an_event_is_422_naming_the_field(client, event, field):
    sid = await start(client)
    err = await error_of(await post_raw(client, sid, json.dumps({"events": [event]})), 422)
    assert err["code"] == "control_character" and err["details"][0]["field"] == field
    assert await stored(client, sid) == []


async def test_transcripts_keep_tabs_and_newlines(client):
    sid = await start(client)
    event = {"id": "e1", "type": "transcript", "role": "user", "text": "one\ttwo\r\nthree"}
    resp = await post_raw(client, sid, json.dumps({"events": [event]}))
    assert resp.status == 200, await resp.text()
    assert (await stored(client, sid))[0]["text"] == "one\ttwo\r\nthree"


async def test_tool_arguments_nested_over_the_limit_are_422_and_nothing_is_stored(client):
    sid = await start(client)
    # Body, events list, event, arguments: 4 levels, so arguments may nest 28 more.
    ok = {"id": "ok", "type": "tool_call", "tool": "t", "duration_ms": 1, "ok": True}
    resp = await post_raw(client, sid, json.dumps({"events": [{**ok, "arguments": nested(29)}]}))
    assert resp.status == 200, await resp.text()
    deep = {**ok, "id": "deep", "arguments": nested(30)}
    err = await error_of(await post_raw(client, sid, json.dumps({"events": [deep]})), 422)
    assert err["code"] == "nesting_too_deep" and "32" in err["message"]
    assert err["details"][0]["field"].startswith("events.0.arguments")
    assert [e["id"] for e in await stored(client, sid)] == ["ok"]
