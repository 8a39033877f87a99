"""Loopback servers for the browser tests.

The token server is the real one (`create_app`) on SQLite, creating its rooms on
the run's real livekit-server. Two small apps stand at the browser's other boundaries: a host
page server (the customer's website, on its own origin) and a "voice server" that
records the widget's attempt to open LiveKit's signalling websocket and refuses it,
as an unreachable SFU would.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from textwrap import dedent
from typing import Any

import jwt
from aiohttp import web

from testkit.livekit_server import API_KEY, API_SECRET, LiveKitRecord
from token_server.app import create_app
from token_server.settings import Settings

RETRY_AFTER_SECONDS = 42
# The site's API key, which its backend signs grants with.
GRANT_KEY = "browser-site-key-long-enough-to-sign-grants"

# Characters for the browser tests. "localhost-only" exists so that a page on
# http://localhost:* is an origin CORS answers while support-bot still refuses it.
CHARACTERS = {
    "support-bot": """
        slug: support-bot
        name: Sam from Support
        description: Answers product questions.
        language: en-US
        system_prompt: You are Sam.
        greeting: Hi, I'm Sam.
        allowed_origins: ["http://127.0.0.1:*"]
        max_concurrent_sessions: 50
    """,
    "intake": """
        slug: intake
        name: Riley, Intake Assistant
        description: Collects a new patient's details.
        language: en-US
        system_prompt: You are Riley.
        greeting: Hi, I'm Riley.
        allowed_origins: ["http://127.0.0.1:*"]
        form:
          fields:
            - {name: full_name, type: string, required: true, description: Full name.}
            - {name: visit_reason, type: choice, choices: [checkup, other]}
    """,
    "full-bot": """
        slug: full-bot
        name: Always Busy
        description: Has room for one call at a time.
        system_prompt: You are busy.
        allowed_origins: ["http://127.0.0.1:*"]
        max_concurrent_sessions: 1
    """,
    "localhost-only": """
        slug: localhost-only
        name: Local Only
        description: Talks to pages on localhost.
        system_prompt: You are local.
        allowed_origins: ["http://localhost:*"]
    """,
}


def unused_port() -> int:
    """A loopback TCP port that nothing listens on (free when probed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@asynccontextmanager
async def serving(app: web.Application, address: str = "127.0.0.1") -> AsyncIterator[str]:
    """Run `app` on an ephemeral port of a loopback `address`; yield its base URL."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, address, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://{address}:{port}"
    finally:
        await runner.cleanup()


def write_characters(directory: Path) -> Path:
    """Write the test characters as YAML files into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    for slug, text in CHARACTERS.items():
        (directory / f"{slug}.yaml").write_text(dedent(text).lstrip(), encoding="utf-8")
    return directory


@dataclass
class VoiceServer:
    """What the refusing "voice server" saw: one entry per HTTP request (path?query)."""

    requests: list[str] = field(default_factory=list)
    url: str = ""
    delay_seconds: float = 0.0

    def app(self) -> web.Application:
        """An app that records every request and answers 503, like an SFU that is down."""

        async def refuse(request: web.Request) -> web.Response:
            self.requests.append(request.path_qs)
            await asyncio.sleep(self.delay_seconds)
            # LiveKit answers CORS on /rtc/validate; so does this, so the client reads the 503.
            cors = {"Access-Control-Allow-Origin": "*"}
            return web.Response(status=503, text="voice server unavailable", headers=cors)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", refuse)
        return app


@dataclass
class HostPage:
    """One file of the customer's website."""

    body: str
    content_type: str = "text/html"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class HostPages:
    """The customer's website: files by path, each with optional response headers.

    Its backend also mints session grants at `POST /oshara/grant`, for a signed-in user
    with `grant_claims` (the README's example does the same), or answers
    `grant_status` when that is set.
    """

    pages: dict[str, HostPage] = field(default_factory=dict)
    grant_claims: dict[str, Any] = field(default_factory=dict)
    grant_status: int | None = None
    grants: list[str] = field(default_factory=list)

    def add(
        self, path: str, body: str, headers: dict[str, str] | None = None, content_type: str = "text/html"
    ) -> None:
        """Serve `body` at `path`."""
        self.pages[path] = HostPage(body, content_type, headers or {})

    def app(self) -> web.Application:
        """The app serving the pages added so far (and later)."""

        async def page(request: web.Request) -> web.Response:
            if request.path not in self.pages:
                raise web.HTTPNotFound()
            found = self.pages[request.path]
            return web.Response(text=found.body, content_type=found.content_type, headers=found.headers)

        async def grant(request: web.Request) -> web.Response:
            if self.grant_status is not None:
                return web.Response(status=self.grant_status, text="not signed in")
            now = int(time.time())
            claims = {"iat": now, "exp": now + 120, "jti": secrets.token_urlsafe(16), **self.grant_claims}
            self.grants.append(jwt.encode(claims, GRANT_KEY, algorithm="HS256"))
            return web.json_response({"grant": self.grants[-1]}, headers={"Cache-Control": "no-store"})

        app = web.Application()
        app.router.add_post("/oshara/grant", grant)
        app.router.add_get("/{tail:.*}", page)
        return app


@dataclass
class Stack:
    """Everything the browser talks to, on loopback."""

    token_server: str
    livekit: LiveKitRecord
    voice_server: VoiceServer
    host_pages: HostPages
    host_127: str
    host_localhost: str
    # An origin that no character allows (127.0.0.2 is loopback too, and a secure context).
    host_stranger: str


@asynccontextmanager
async def running_stack(
    tmp_path: Path, livekit: LiveKitRecord, *, livekit_reachable: bool = True
) -> AsyncIterator[Stack]:
    """The real token server on the real livekit-server `livekit` reads, a voice server and a host site.

    With `livekit_reachable=False` the token server's LiveKit API URL is a port that
    nothing listens on.
    """
    voice = VoiceServer()
    pages = HostPages()
    async with serving(voice.app()) as voice_url:
        voice.url = voice_url
        settings = Settings(
            _env_file=None,
            # What the widget joins: the refusing voice server, not the real one.
            livekit_url=voice_url.replace("http://", "ws://"),
            livekit_api_url=livekit.url if livekit_reachable else f"http://127.0.0.1:{unused_port()}",
            livekit_api_key=API_KEY,
            livekit_api_secret=API_SECRET,
            livekit_timeout_seconds=3,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'oshara.db'}",
            characters_dir=write_characters(tmp_path / "characters"),
            retry_after_seconds=RETRY_AFTER_SECONDS,
            token_server_api_keys=[GRANT_KEY],
        )
        async with (
            serving(create_app(settings)) as token_server,
            serving(pages.app()) as host_127,
            serving(pages.app(), "127.0.0.2") as host_stranger,
        ):
            host_localhost = host_127.replace("127.0.0.1", "localhost")
            yield Stack(token_server, livekit, voice, pages, host_127, host_localhost, host_stranger)
