"""Schemathesis fuzzes every operation of GET /openapi.json against the real token server.

Valid and invalid requests both (hypothesis, derandomized: the same cases every run),
each checked by schemathesis: no 5xx, a documented status code and content type, a
body that matches the documented schema, invalid data refused, a missing API key
refused. The server is the one `python -m token_server` runs (TokenServerRunner),
on the real livekit-server and each database, in a thread of its own because
schemathesis calls it synchronously. `tests/api_fuzz_report.py` prints the counts.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, Phase, settings

from tests.api_fuzz_report import SENT
from token_server.app import create_app
from token_server.http_server import TokenServerRunner
from token_server.openapi import build_document

pytestmark = pytest.mark.integration

# Per operation and mode; 13 operations, two modes, two databases: about a minute on 2 cores.
MAX_EXAMPLES = 25
API_KEY = {"Authorization": "Bearer server-key-1"}

schema = schemathesis.openapi.from_dict(build_document())
schema.config.generation.update(max_examples=MAX_EXAMPLES)


class ServerThread:
    """The token server on its own event loop in a thread, on a free loopback port."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.answered = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._run, name="token-server", daemon=True)

    async def _count(self, request: web.Request, response: web.StreamResponse) -> None:
        SENT["requests"] += 1
        SENT[f"{response.status // 100}xx"] += 1

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self.app.on_response_prepare.append(self._count)
        runner = TokenServerRunner(self.app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.SockSite(runner, self._sock).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    def __enter__(self) -> ServerThread:
        self._thread.start()
        assert self._ready.wait(30), "the token server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)


@pytest.fixture
def token_server(make_settings) -> Iterator[ServerThread]:
    with ServerThread(create_app(make_settings())) as server:
        yield server


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,  # the same cases on every run, so CI is reproducible
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_holds_to_the_document(case, token_server, http):
    SENT["cases"] += 1
    operation = case.operation.definition.raw
    headers = API_KEY if operation.get("security") else None
    # A session start or an event batch can be schema-valid and still a 422: a locked
    # field, a placeholder with no value in metadata, a voice model that cannot speak the
    # language are rules of the character, not of the schema; and a cursor is valid only
    # as the server wrote it. Everywhere else, data the document calls valid must be accepted.
    semantic = case.method == "POST" or bool(case.query and case.query.get("cursor"))
    excluded = [schemathesis.checks.positive_data_acceptance] if semantic else []
    case.call_and_validate(base_url=token_server.url, session=http, headers=headers, excluded_checks=excluded)
