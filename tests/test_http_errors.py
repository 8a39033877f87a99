"""What happens below the handlers: requests aiohttp's HTTP parser refuses, and clients
that go away mid-body. Each against the server as `python -m token_server` runs it."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from aiohttp import web

from token_server.app import DB, create_app
from token_server.db import sessions
from token_server.http_server import TokenServerRunner

pytestmark = pytest.mark.integration

SECRET = "sk-live-" + "c0ffee" * 8


class Served:
    def __init__(self, app: web.Application, port: int) -> None:
        self.app, self.port = app, port

    async def exchange(self, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send `raw` bytes, read the whole answer: status, headers and body."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(raw)
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), 5)
        finally:
            writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.fixture
async def served(make_settings) -> AsyncIterator[Served]:
    app = create_app(make_settings())
    runner = TokenServerRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    try:
        yield Served(app, sock.getsockname()[1])
    finally:
        await runner.cleanup()


def request(*headers: str, line: str = "GET /healthz HTTP/1.1") -> bytes:
    return ("\r\n".join([line, "Host: 127.0.0.1", *headers, "Connection: close"]) + "\r\n\r\n").encode()


def assert_error_shape(status: int, headers: dict[str, str], body: bytes, expected: int = 400) -> dict:
    assert status == expected, body
    assert headers["content-type"].startswith("application/json")
    err = json.loads(body)["error"]
    assert set(err) == {"code", "message", "details"}
    return err


PARSER_REFUSALS = {
    "authorization_too_long": request(f"Authorization: Bearer {SECRET}{'x' * 9000}"),
    "header_name_too_long": request(f"X-{SECRET}{'x' * 9000}: 1"),
    "too_many_headers": request(*(f"X-H{i}: {SECRET}" for i in range(200))),
    "request_line_too_long": request(line=f"GET /healthz?k={SECRET}{'x' * 9000} HTTP/1.1"),
    "bad_request_line": b"GET\x00 /" + SECRET.encode() + b" HTTP/1.1\r\n\r\n",
    "not_http": b"\x16\x03\x01" + SECRET.encode() + b"\r\n\r\n",
    "bad_header_line": request(f"Authorization {SECRET}"),
}


@pytest.mark.parametrize("raw", PARSER_REFUSALS.values(), ids=PARSER_REFUSALS.keys())
async def test_a_request_the_parser_refuses_is_a_json_error_and_logs_none_of_its_bytes(served, caplog, raw):
    caplog.set_level(logging.DEBUG)
    status, headers, body = await served.exchange(raw)
    err = assert_error_shape(status, headers, body)
    assert err["code"] == "bad_http_request"
    assert SECRET not in body.decode() and SECRET[:12] not in err["message"]
    assert SECRET[:12] not in caplog.text
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a client's bad request"


async def test_an_oversized_authorization_header_is_not_logged_under_any_runner(client, caplog):
    # The tests' own runner (aiohttp's AppRunner): the log is the app's, through handler_args.
    caplog.set_level(logging.DEBUG)
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    writer.write(PARSER_REFUSALS["authorization_too_long"])
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert data.split(b" ")[1] == b"400"
    assert SECRET[:12] not in caplog.text
    assert any(r.getMessage() == "refused a request the HTTP parser could not read" for r in caplog.records)


async def test_good_requests_are_unchanged(served):
    status, headers, body = await served.exchange(request(f"Authorization: Bearer {SECRET}"))
    assert status == 200 and json.loads(body)["status"] == "ok"


@pytest.mark.parametrize("sent", [0, 40, 4000])
async def test_a_client_that_leaves_mid_body_is_one_quiet_line_and_nothing_stored(
    served, livekit, caplog, sent
):
    caplog.set_level(logging.DEBUG)
    body = json.dumps({"agent": "helper", "metadata": {"note": "x" * 6000}}).encode()
    head = (
        "POST /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://shop.example.com\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    _, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(head + body[:sent])
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.transport.abort()  # gone, without finishing the body
    await asyncio.sleep(0.5)

    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert noisy == [], [r.getMessage() for r in noisy]
    assert "Traceback" not in caplog.text
    left = [r for r in caplog.records if r.name.startswith("token_server") and "disconnect" in r.getMessage()]
    assert len(left) <= 1
    async with served.app[DB].connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(sessions))).scalar_one() == 0
    assert await livekit.new_rooms() == {}
    # The slot is free: a whole request from the next client starts a session.
    status, _, answer = await served.exchange(head + body)
    assert status == 201, answer
