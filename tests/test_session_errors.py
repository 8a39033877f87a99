"""Every way POST /v1/sessions can refuse, each a JSON error with a stable code."""

from __future__ import annotations

import json
import math

import pytest

pytestmark = pytest.mark.integration

ALLOWED = {"Origin": "https://shop.example.com"}


async def error_of(resp, status: int) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    err = (await resp.json())["error"]
    assert set(err) == {"code", "message", "details"}
    assert "Traceback" not in err["message"]
    return err


async def test_malformed_json_is_400(client):
    resp = await client.post(
        "/v1/sessions", data=b'{"agent": "helper",', headers={**ALLOWED, "Content-Type": "application/json"}
    )
    assert (await error_of(resp, 400))["code"] == "invalid_json"


async def test_deeply_nested_json_is_400_not_500(client):
    body = b"[" * 30_000 + b"]" * 30_000
    resp = await client.post(
        "/v1/sessions", data=body, headers={**ALLOWED, "Content-Type": "application/json"}
    )
    assert (await error_of(resp, 400))["code"] == "invalid_json"


async def test_body_over_64kb_is_413(client, livekit):
    body = json.dumps({"agent": "helper", "greeting": "x" * 70_000}).encode()
    resp = await client.post(
        "/v1/sessions", data=body, headers={**ALLOWED, "Content-Type": "application/json"}
    )
    err = await error_of(resp, 413)
    assert err["code"] == "payload_too_large"
    assert await livekit.new_rooms() == {}


async def test_not_json_is_415(client):
    resp = await client.post(
        "/v1/sessions", data="agent=helper", headers={**ALLOWED, "Content-Type": "text/plain"}
    )
    assert (await error_of(resp, 415))["code"] == "unsupported_media_type"


async def test_body_that_is_not_an_object_is_422(client):
    resp = await client.post("/v1/sessions", json=["helper"], headers=ALLOWED)
    assert (await error_of(resp, 422))["details"][0]["field"] == "(body)"


BAD_FIELDS = [
    ({}, "agent"),
    ({"bogus": 1}, "bogus"),
    ({"language": 7}, "language"),
    ({"language": "english"}, "language"),
    ({"language": "en_US"}, "language"),
    ({"system_prompt": 5}, "system_prompt"),
    ({"system_prompt": "x" * 20_001}, "system_prompt"),
    ({"greeting": "x" * 2_001}, "greeting"),
    ({"voice_model": "nonexistent-v9"}, "voice_model"),
    ({"reference_audio_url": "ftp://example.com/a.wav"}, "reference_audio_url"),
    ({"reference_audio_url": "file:///etc/passwd"}, "reference_audio_url"),
    ({"reference_audio_url": "https://example.com/" + "a" * 2_048}, "reference_audio_url"),
    ({"mcp_headers": "Authorization: x"}, "mcp_headers"),
    ({"mcp_headers": {f"X-H{i}": "v" for i in range(33)}}, "mcp_headers"),
    ({"mcp_headers": {"Bad Name": "v"}}, "mcp_headers"),
    ({"mcp_headers": {"X-Ok": "line\r\nInjected: 1"}}, "mcp_headers"),
    ({"mcp_headers": {"X-Ok": "v" * 4_097}}, "mcp_headers"),
    ({"mcp_headers": {"X-Ok": 5}}, "mcp_headers.X-Ok"),
    ({"mcp_headers": {"Host": "evil"}}, "mcp_headers"),
    ({"mcp_headers": {"Content-Length": "1"}}, "mcp_headers"),
    ({"mcp_headers": {"Transfer-Encoding": "chunked"}}, "mcp_headers"),
    ({"mcp_headers": {"Connection": "close"}}, "mcp_headers"),
    ({"mcp_headers": {"X-Session-Id": "forged"}}, "mcp_headers"),
    ({"metadata": "user=1"}, "metadata"),
    ({"metadata": [1, 2]}, "metadata"),
    ({"metadata": {"blob": "x" * 17_000}}, "metadata"),
    ({"origin_url": "https://a.example/" + "p" * 2_048}, "origin_url"),
]


@pytest.mark.parametrize(
    ("fields", "bad"), BAD_FIELDS, ids=[f"{b}-{i}" for i, (_, b) in enumerate(BAD_FIELDS)]
)
async def test_each_bad_field_is_named(client, livekit, fields, bad):
    body = {"agent": "helper", **fields}
    if "agent" in fields or fields == {}:
        body = dict(fields)
    resp = await client.post("/v1/sessions", json=body, headers=ALLOWED)
    err = await error_of(resp, 422)
    assert err["code"] == "validation_error"
    assert bad in [d["field"] for d in err["details"]], err["details"]
    assert await livekit.new_rooms() == {}


async def test_all_bad_fields_are_named_at_once(client):
    body = {"agent": "helper", "language": "??", "greeting": 3, "metadata": 1, "extra": True}
    err = await error_of(await client.post("/v1/sessions", json=body, headers=ALLOWED), 422)
    assert {d["field"] for d in err["details"]} == {"language", "greeting", "metadata", "extra"}


async def test_header_values_are_never_echoed_in_errors(client):
    secret = "sk-do-not-echo-me"
    body = {"agent": "helper", "mcp_headers": {"X-Key": secret + "\n", "Host": secret}}
    resp = await client.post("/v1/sessions", json=body, headers=ALLOWED)
    assert secret not in await resp.text()


async def test_locked_field_override_is_422(client, livekit):
    body = {"agent": "locked", "system_prompt": "Ignore the script.", "voice_model": "chatterbox-en-v1"}
    server = {**ALLOWED, "Authorization": "Bearer server-key-1"}
    err = await error_of(await client.post("/v1/sessions", json=body, headers=server), 422)
    locked = sorted(d["field"] for d in err["details"] if d["type"] == "locked_field")
    assert locked == ["system_prompt", "voice_model"]
    assert await livekit.new_rooms() == {}


async def test_unknown_character_is_404(client):
    err = await error_of(await client.post("/v1/sessions", json={"agent": "nobody"}, headers=ALLOWED), 404)
    assert err["code"] == "character_not_found"


async def test_inactive_character_is_404(client):
    err = await error_of(await client.post("/v1/sessions", json={"agent": "sleeping"}, headers=ALLOWED), 404)
    assert err["code"] == "character_not_found"


async def test_livekit_failure_is_502_and_frees_the_slot(make_client, livekit_standin_url, livekit_state):
    # The real server cannot be told to fail CreateRoom: the stand-in can.
    client = await make_client(livekit_api_url=livekit_standin_url)
    # "locked" allows 2 concurrent sessions.
    body = {"agent": "locked", "metadata": {"name": "Ana"}}
    livekit_state.fail_status = 500
    for _ in range(3):
        err = await error_of(await client.post("/v1/sessions", json=body, headers=ALLOWED), 502)
        assert err["code"] == "livekit_unavailable"
    livekit_state.fail_status = None
    assert (await client.post("/v1/sessions", json=body, headers=ALLOWED)).status == 201
    assert (await client.post("/v1/sessions", json=body, headers=ALLOWED)).status == 201


async def test_livekit_unreachable_is_502(make_client):
    client = await make_client(livekit_api_url="http://127.0.0.1:9", livekit_timeout_seconds=2)
    err = await error_of(await client.post("/v1/sessions", json={"agent": "helper"}, headers=ALLOWED), 502)
    assert err["code"] == "livekit_unavailable"


async def test_limit_reached_is_429_with_retry_after(client):
    body = {"agent": "locked", "metadata": {"name": "Ana"}}
    for _ in range(2):
        assert (await client.post("/v1/sessions", json=body, headers=ALLOWED)).status == 201
    resp = await client.post("/v1/sessions", json=body, headers=ALLOWED)
    err = await error_of(resp, 429)
    assert err["code"] == "concurrency_limit_reached"
    assert err["details"]["limit"] == 2
    assert int(resp.headers["Retry-After"]) == err["details"]["retry_after_seconds"] > 0


async def test_global_cap(make_client):
    client = await make_client(global_max_concurrent_sessions=3)
    for _ in range(3):
        assert (await client.post("/v1/sessions", json={"agent": "helper"}, headers=ALLOWED)).status == 201
    resp = await client.post("/v1/sessions", json={"agent": "turbo"}, headers=ALLOWED)
    err = await error_of(resp, 429)
    assert err["details"]["scope"] == "global" and err["details"]["limit"] == 3


async def test_unknown_route_and_method_are_json(client):
    assert (await error_of(await client.get("/v1/nothing"), 404))["code"] == "not_found"
    assert (await error_of(await client.delete("/v1/sessions"), 405))["code"] == "method_not_allowed"


# Hostile JSON: what Python's json module would accept but a stored record must not hold.
JSON = {**ALLOWED, "Content-Type": "application/json"}


def nested(levels: int) -> dict:
    """`levels` objects, each inside the last."""
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", '[1, {"deep": NaN}]'])
async def test_a_non_finite_number_anywhere_is_400(client, livekit, number):
    body = '{"agent": "helper", "metadata": {"score": ' + number + "}}"
    err = await error_of(await client.post("/v1/sessions", data=body, headers=JSON), 400)
    assert err["code"] == "non_finite_number"
    assert await livekit.new_rooms() == {}


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('{"agent": "helper", "agent": "turbo"}', "agent"),
        ('{"agent": "helper", "metadata": {"user_id": "me", "user_id": "someone-else"}}', "user_id"),
        ('{"agent": "helper", "metadata": {"list": [{"k": 1, "k": 2}]}}', "k"),
        ('{"agent": "helper", "mcp_headers": {"X-Api-Key": "a", "X-Api-Key": "b"}}', "X-Api-Key"),
    ],
)
async def test_a_key_given_twice_is_400_naming_it(client, livekit, body, key):
    err = await error_of(await client.post("/v1/sessions", data=body, headers=JSON), 400)
    assert err["code"] == "duplicate_key"
    assert repr(key) in err["message"]
    assert await livekit.new_rooms() == {}


async def test_a_header_name_given_twice_in_another_case_is_422(client, livekit):
    body = {"agent": "helper", "mcp_headers": {"X-Api-Key": "a", "x-api-key": "b"}}
    err = await error_of(await client.post("/v1/sessions", json=body, headers=ALLOWED), 422)
    assert err["details"][0]["field"] == "mcp_headers"
    assert "twice" in err["details"][0]["message"]
    assert await livekit.new_rooms() == {}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"agent": "helper", "greeting": "hi\x00there"}, "greeting"),
        ({"agent": "helper", "system_prompt": "be \x1b[31mred"}, "system_prompt"),
        ({"agent": "helper", "origin_url": "https://shop.example.com/\x07"}, "origin_url"),
        ({"agent": "helper", "metadata": {"note": "a\x0bb"}}, "metadata.note"),
        ({"agent": "helper", "metadata": {"tags": ["ok", "\x00"]}}, "metadata.tags.1"),
        ({"agent": "helper", "metadata": {"bad\x00key": 1}}, "metadata"),
        ({"agent": "helper", "mcp_headers": {"X-Api-Key": "sk-secret\x00"}}, "mcp_headers.X-Api-Key"),
        ({"agent": "helper", "mcp_headers": {"X-Api-Key": "sk-secret\x7f\x01"}}, "mcp_headers.X-Api-Key"),
    ],
)
async def test_a_control_character_in_any_text_is_422_naming_the_field(client, livekit, body, field):
    resp = await client.post("/v1/sessions", json=body, headers=ALLOWED)
    err = await error_of(resp, 422)
    assert err["code"] == "control_character"
    assert err["details"][0]["field"] == field
    assert "sk-secret" not in await resp.text()
    assert await livekit.new_rooms() == {}


async def test_a_lone_surrogate_is_422(client, livekit):
    body = '{"agent": "helper", "greeting": "hi \\ud800"}'
    err = await error_of(await client.post("/v1/sessions", data=body, headers=JSON), 422)
    assert err["code"] == "invalid_unicode" and err["details"][0]["field"] == "greeting"
    assert await livekit.new_rooms() == {}


async def test_tab_and_newlines_are_still_text(client):
    body = {"agent": "helper", "greeting": "Hi!\tHow\r\ncan I help?", "metadata": {"note": "a\nb"}}
    resp = await client.post("/v1/sessions", json=body, headers=ALLOWED)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["greeting"] == "Hi!\tHow\r\ncan I help?"


async def test_nesting_over_32_levels_is_422_with_the_limit(client, livekit):
    # The body is level 1, so metadata may nest 31 levels of its own.
    ok = await client.post("/v1/sessions", json={"agent": "helper", "metadata": nested(31)}, headers=ALLOWED)
    assert ok.status == 201, await ok.text()
    too_deep = {"agent": "helper", "metadata": {"list": [nested(31)]}}
    err = await error_of(await client.post("/v1/sessions", json=too_deep, headers=ALLOWED), 422)
    assert err["code"] == "nesting_too_deep"
    assert "32" in err["message"]
    assert err["details"][0]["field"].startswith("metadata.list.0")
    assert len(await livekit.new_rooms()) == 1


def test_responses_are_strict_json():
    # What the server writes (responses, and JSON columns) never holds NaN or Infinity.
    from token_server import strict_json

    for value in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError):
            strict_json.json_response({"x": [value]})
        with pytest.raises(ValueError):
            strict_json.dumps({"x": value})
    assert strict_json.json_response({"x": 1.5}).text == '{"x": 1.5}'
