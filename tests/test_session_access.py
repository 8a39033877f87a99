"""Who may start a session: Origin, API keys and CORS; and the concurrency race."""

from __future__ import annotations

import asyncio
import json

import pytest

from contract import SessionConfig

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "origin",
    [
        "https://shop.example.com",
        "https://shop.example.com:443",
        "http://localhost:3000",
        "http://localhost:5173",
        "https://a.partner.example",
        "https://deep.a.partner.example",
    ],
)
async def test_allowed_origins(client, origin):
    resp = await client.post("/v1/sessions", json={"agent": "helper"}, headers={"Origin": origin})
    assert resp.status == 201, await resp.text()


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example.com",
        "http://shop.example.com",  # wrong scheme
        "https://shop.example.com:8443",  # wrong port
        "https://partner.example",  # the wildcard covers subdomains only
        "https://shop.example.com.evil.net",
        "null",
        "not a url",
    ],
)
async def test_disallowed_origins_are_403(client, livekit, origin):
    resp = await client.post("/v1/sessions", json={"agent": "helper"}, headers={"Origin": origin})
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "origin_not_allowed"
    assert await livekit.new_rooms() == {}


async def test_origin_url_does_not_decide_access(client):
    body = {"agent": "helper", "origin_url": "https://shop.example.com/page"}
    resp = await client.post("/v1/sessions", json=body, headers={"Origin": "https://evil.example.com"})
    assert resp.status == 403


async def test_star_allows_any_origin_and_no_origin(client):
    body = {"agent": "locked", "metadata": {"name": "x"}}
    assert (
        await client.post("/v1/sessions", json=body, headers={"Origin": "https://anything.test"})
    ).status == 201
    assert (await client.post("/v1/sessions", json=body)).status == 201


async def test_no_origin_needs_an_api_key(client):
    resp = await client.post("/v1/sessions", json={"agent": "helper"})
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "api_key_required"
    resp = await client.post(
        "/v1/sessions", json={"agent": "helper"}, headers={"Authorization": "Bearer server-key-2"}
    )
    assert resp.status == 201


async def test_wrong_api_key_is_401_even_with_an_allowed_origin(client):
    resp = await client.post(
        "/v1/sessions",
        json={"agent": "helper"},
        headers={"Authorization": "Bearer nope", "Origin": "https://shop.example.com"},
    )
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "invalid_api_key"


async def test_api_key_holder_may_start_from_any_origin(client):
    resp = await client.post(
        "/v1/sessions",
        json={"agent": "turbo"},
        headers={"Authorization": "Bearer server-key-1", "Origin": "https://backend.internal"},
    )
    assert resp.status == 201


async def test_cors_preflight_for_an_allowed_origin(client):
    resp = await client.options(
        "/v1/sessions",
        headers={
            "Origin": "http://localhost:8000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "http://localhost:8000"
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert "Idempotency-Key" in resp.headers["Access-Control-Allow-Headers"]
    assert resp.headers["Vary"] == "Origin"


async def test_cors_preflight_passes_any_origin_while_a_character_allows_star(client):
    resp = await client.options(
        "/v1/sessions",
        headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert resp.status == 204


async def test_cors_preflight_refused_without_any_matching_character(make_client, tmp_path):
    chars = tmp_path / "chars"
    chars.mkdir()
    (chars / "only.yaml").write_text(
        "slug: only\nname: Only\nsystem_prompt: hi\nallowed_origins: ['https://shop.example.com']\n"
    )
    client = await make_client(characters_dir=chars)
    resp = await client.options(
        "/v1/sessions",
        headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert resp.status == 403
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_cors_headers_on_errors_so_the_widget_can_read_them(client):
    # The origin is allowed by "helper" but not by "turbo": the 403 is readable.
    resp = await client.post(
        "/v1/sessions", json={"agent": "turbo"}, headers={"Origin": "http://localhost:3000"}
    )
    assert resp.status == 403
    assert resp.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert "Retry-After" in resp.headers["Access-Control-Expose-Headers"]


async def test_parallel_burst_gives_exactly_the_limit(client, livekit):
    """40 simultaneous requests against a limit of 5: five 201s, thirty-five 429s."""
    body = {"agent": "helper"}
    headers = {"Origin": "https://shop.example.com"}
    responses = await asyncio.gather(
        *(client.post("/v1/sessions", json=body, headers=headers) for _ in range(40))
    )
    statuses = sorted(r.status for r in responses)
    assert statuses.count(201) == 5
    assert statuses.count(429) == 35
    started = [await r.json() for r in responses if r.status == 201]
    assert sorted(await livekit.new_rooms()) == sorted(s["room_name"] for s in started)


async def test_idempotency_key_returns_the_same_session(client, livekit):
    body = {"agent": "helper", "metadata": {"user_name": "Kim"}}
    headers = {"Origin": "https://shop.example.com", "Idempotency-Key": "order-77-call"}
    first = await client.post("/v1/sessions", json=body, headers=headers)
    assert first.status == 201
    again = await asyncio.gather(*(client.post("/v1/sessions", json=body, headers=headers) for _ in range(5)))
    a = await first.json()
    for resp in again:
        assert resp.status == 200
        b = await resp.json()
        assert (b["session_id"], b["room_name"], b["participant_identity"]) == (
            a["session_id"],
            a["room_name"],
            a["participant_identity"],
        )
        assert b["greeting"] == a["greeting"] == "Hello Kim!"
    assert list(await livekit.new_rooms()) == [a["room_name"]]
    # No second slot was taken: four more distinct sessions still fit in the limit of 5.
    for _ in range(4):
        assert (
            await client.post("/v1/sessions", json=body, headers={"Origin": headers["Origin"]})
        ).status == 201
    assert (await client.post("/v1/sessions", json=body, headers={"Origin": headers["Origin"]})).status == 429


async def test_idempotency_key_reused_for_another_request_is_422(client):
    headers = {"Origin": "https://shop.example.com", "Idempotency-Key": "k-1"}
    assert (await client.post("/v1/sessions", json={"agent": "helper"}, headers=headers)).status == 201
    resp = await client.post("/v1/sessions", json={"agent": "helper", "greeting": "Yo"}, headers=headers)
    assert resp.status == 422
    assert (await resp.json())["error"]["code"] == "idempotency_key_reused"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # Another character, same caller.
        (
            ({"agent": "helper"}, {"Origin": "https://shop.example.com"}),
            ({"agent": "locked", "metadata": {"name": "Ana"}}, {"Origin": "https://shop.example.com"}),
        ),
        # The same request from another allowed origin.
        (
            ({"agent": "helper"}, {"Origin": "https://shop.example.com"}),
            ({"agent": "helper"}, {"Origin": "https://a.partner.example"}),
        ),
        # A browser, then a server with an API key.
        (
            ({"agent": "helper"}, {"Origin": "https://shop.example.com"}),
            ({"agent": "helper"}, {"Authorization": "Bearer server-key-1"}),
        ),
        # Two servers holding different API keys.
        (
            ({"agent": "helper"}, {"Authorization": "Bearer server-key-1"}),
            ({"agent": "helper"}, {"Authorization": "Bearer server-key-2"}),
        ),
    ],
    ids=["character", "origin", "browser-then-key", "another-key"],
)
async def test_idempotency_key_reused_by_another_caller_or_character_is_422(client, first, second):
    key = {"Idempotency-Key": "shared-key"}
    created = await client.post("/v1/sessions", json=first[0], headers=first[1] | key)
    assert created.status == 201, await created.text()
    resp = await client.post("/v1/sessions", json=second[0], headers=second[1] | key)
    assert resp.status == 422, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == "idempotency_key_reused"
    assert (await created.json())["session_id"] not in await resp.text()
    # The first caller still gets its own session back.
    again = await client.post("/v1/sessions", json=first[0], headers=first[1] | key)
    assert again.status == 200
    assert (await again.json())["session_id"] == (await created.json())["session_id"]


async def test_idempotency_key_race_across_characters_creates_one_session(client):
    key = {"Idempotency-Key": "race-key", "Origin": "https://shop.example.com"}
    responses = await asyncio.gather(
        *(
            client.post("/v1/sessions", json={"agent": a, "metadata": {"name": "Ana"}}, headers=key)
            for a in ["helper", "locked"] * 4
        )
    )
    statuses = sorted(r.status for r in responses)
    assert 201 in statuses and set(statuses) <= {200, 201, 422}, statuses
    assert statuses.count(201) == 1


async def test_idempotency_key_after_a_failed_start_starts_afresh(
    make_client, livekit_standin_url, livekit_state
):
    # The real server cannot be told to fail CreateRoom: the stand-in can.
    client = await make_client(livekit_api_url=livekit_standin_url)
    headers = {"Origin": "https://shop.example.com", "Idempotency-Key": "retry-me"}
    livekit_state.fail_status = 503
    assert (await client.post("/v1/sessions", json={"agent": "helper"}, headers=headers)).status == 502
    livekit_state.fail_status = None
    resp = await client.post("/v1/sessions", json={"agent": "helper"}, headers=headers)
    assert resp.status == 201
    assert (
        SessionConfig.from_json(livekit_state.created[0].metadata).session_id
        == (await resp.json())["session_id"]
    )


async def test_idempotency_key_is_checked(client):
    headers = {"Origin": "https://shop.example.com", "Idempotency-Key": "x" * 256}
    resp = await client.post("/v1/sessions", json={"agent": "helper"}, headers=headers)
    assert resp.status == 422


async def raw_request(client, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send bytes aiohttp's client would refuse to, and read the status and body."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(head + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
    await writer.drain()
    data = await reader.read()
    writer.close()
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize(
    "origin",
    [
        "https://caf\xe9.example".encode("latin-1"),  # latin-1, not UTF-8
        b"https://shop.example.com\xff\xfe",  # bytes no charset decodes
        b"https://\xc3(.example",  # a broken UTF-8 sequence
    ],
)
@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/v1/sessions"), ("OPTIONS", "/v1/sessions"), ("GET", "/v1/characters")]
)
async def test_undecodable_header_bytes_are_a_clear_400(client, origin, method, path):
    body = b'{"agent": "helper"}' if method == "POST" else b""
    head = (
        (
            f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Access-Control-Request-Method: POST\r\n"
        ).encode()
        + b"Origin: "
        + origin
        + b"\r\n"
    )
    status, raw = await raw_request(client, head, body)
    assert status == 400, raw
    error = json.loads(raw)["error"]
    assert error["code"] == "invalid_header"
    assert "Origin" in error["message"]
