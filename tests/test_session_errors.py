"""Every way POST /v1/sessions can refuse, each a JSON error with a stable code."""

from __future__ import annotations

import json

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
    err = await error_of(await client.post("/v1/sessions", json=body, headers=ALLOWED), 422)
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
