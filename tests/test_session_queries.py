"""Every query parameter, path id and cursor of the GET endpoints is read strictly: a bad one
is a 422 (or, for an id that cannot exist, a 404) in the error shape, never a 500."""

from __future__ import annotations

import base64

import pytest

pytestmark = pytest.mark.integration

KEY = {"Authorization": "Bearer server-key-1"}
ORIGIN = {"Origin": "https://shop.example.com"}


def cursor_of(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def error_of(resp, status: int) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    err = (await resp.json())["error"]
    assert set(err) == {"code", "message", "details"}
    return err


# Each is a class: numbers in other scripts or out of range, cursors of every wrong shape.
BAD_NUMBERS = ["１２", "٣", "²", "12.0", "+5", " 5", "-1", "0", "1001", "9" * 5000, "1e3"]
BAD_CURSORS = [
    "%%%",
    "not base64!",
    cursor_of(b"\xff\xfe"),  # not UTF-8
    cursor_of(b"[" * 150 + b"]" * 150),  # deep, but short
    cursor_of(b'"' + b"x" * 400 + b'"'),  # over the length
    cursor_of(b"NaN"),
    cursor_of(b"true"),
    cursor_of(b"-5"),
    cursor_of(b"1.5"),
    cursor_of(str(2**64).encode()),
    cursor_of(b'{"a": 1, "a": 2}'),
    cursor_of(b'["2026-01-01T00:00:00+00:00"]'),
    cursor_of(b'[1, "ses_0"]'),
    cursor_of(b'["not a time", "ses_00000000000000000000000000000000"]'),
    cursor_of(b'["2026-01-01T00:00:00+00:00", "ses_\\u0000"]'),
    cursor_of(b'[["2026"], {"x": []}]'),
]


async def started(client) -> str:
    resp = await client.post("/v1/sessions", json={"agent": "helper"}, headers=ORIGIN)
    assert resp.status == 201, await resp.text()
    return (await resp.json())["session_id"]


async def test_a_page_size_that_is_not_ascii_digits_in_range_is_422(client):
    sid = await started(client)
    for limit in BAD_NUMBERS:
        for path in ("/v1/sessions", f"/v1/sessions/{sid}/logs"):
            err = await error_of(await client.get(path, params={"limit": limit}, headers=KEY), 422)
            assert err["code"] == "validation_error"
            assert err["details"][0]["field"] == "limit"
            assert "limit" in err["message"]


async def test_a_cursor_we_did_not_write_is_422(client):
    sid = await started(client)
    for cursor in BAD_CURSORS:
        for path in ("/v1/sessions", f"/v1/sessions/{sid}/logs"):
            err = await error_of(await client.get(f"{path}?cursor={cursor}", headers=KEY), 422)
            assert err["details"][0]["field"] == "cursor", (cursor, err)


BAD_PARAMETERS = [
    "character=%00",
    "character=x%00y",
    "character=" + "a" * 300,
    "character=Helper",
    "status=%00",
    "status=gone",
    "since=%00",
    "since=yesterday",
    "since=%D9%A2%D9%A0%D9%A2%D9%A6-01-01",
    "types=transcript%00",
    "types=" + ",".join(["transcript"] * 40),
    "types=%E2%80%AE",
    "limit=1&limit=2",
    "bogus=1",
]


async def test_every_other_bad_parameter_is_422_naming_it(client):
    sid = await started(client)
    for query in BAD_PARAMETERS:
        path = f"/v1/sessions/{sid}/logs" if query.startswith("types") else "/v1/sessions"
        err = await error_of(await client.get(f"{path}?{query}", headers=KEY), 422)
        assert err["code"] == "validation_error"
        assert err["details"][0]["field"] == query.split("=")[0], (query, err)


async def test_a_session_id_that_cannot_exist_is_404(client):
    for session_id in ("%00", "ses_%00", "x" * 300, "%ED%A0%80", "ses_" + "A" * 32):
        for suffix in ("", "/logs", "/form"):
            resp = await client.get(f"/v1/sessions/{session_id}{suffix}", headers=KEY)
            assert (await error_of(resp, 404))["code"] == "session_not_found"


async def test_good_cursors_still_page(client):
    ids = {await started(client) for _ in range(3)}
    seen, cursor = set(), None
    while True:
        resp = await client.get(
            "/v1/sessions", params={"limit": "2", **({"cursor": cursor} if cursor else {})}, headers=KEY
        )
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        seen |= {s["session_id"] for s in page["sessions"]}
        if not (cursor := page["next_cursor"]):
            break
    assert seen == ids
    logs = await (
        await client.get(f"/v1/sessions/{ids.pop()}/logs", params={"types": "transcript,error"}, headers=KEY)
    ).json()
    assert logs == {"events": [], "next_cursor": None}
    # An empty value is a value, and not a valid one: leave a parameter out to leave it out.
    for query in ("character=", "status=", "since=", "limit=", "cursor="):
        err = await error_of(await client.get(f"/v1/sessions?{query}", headers=KEY), 422)
        assert err["details"][0]["field"] == query[:-1]
