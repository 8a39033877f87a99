"""A whole deployment for one e2e test, every part real but the providers no machine here reaches.

`Stack` runs, inside the test run's network namespace (scripts/netns.sh):
livekit-server on one veth address with webhooks to the token server; the token
server (`python -m token_server`) on the other; one or more workers
(`python -m agent start`) registered under an agent name of the test's own; the
voice service with tiny random Chatterbox weights (`python -m voice_service serve`);
and, in the test's event loop, the Deepgram and OpenAI stand-ins, a real MCP
server and a post-call webhook receiver.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jwt
from aiohttp import web
from livekit import api

from dev.livekit_server import LiveKitConfig, LiveKitServer, free_port
from testkit.standins.deepgram_standin import DeepgramStandIn
from testkit.standins.mcp_server import OrdersMCP, serve_mcp
from testkit.standins.openai_standin import OpenAIStandIn, Script
from testkit.support_call import support_character
from testkit.waiting import wait_until

from .participant import User
from .processes import Process

ADDRESSES = os.environ.get("OSHARA_NETNS_ADDRESSES", "").split()
API_KEY = "e2e-key"
API_SECRET = "e2e-secret-" + "s" * 32  # long enough that PyJWT does not warn
SERVER_KEY = "e2e-server-key-long-enough-to-sign-grants"
WEBHOOK_SECRET = "e2e-webhook-secret"
ORIGIN = "http://localhost:3000"

# A small limit, so a test shows a slot coming back; webhooks to the test's receiver.
E2E_CHARACTER_KEYS = """max_concurrent_sessions: 2
join_timeout_seconds: 60
webhook_url: {webhook_url}
webhook_secret: ${{E2E_WEBHOOK_SECRET}}
analysis:
  summary: true
  fields:
    - {{name: order_id, type: string, description: The order the caller asked about.}}
    - {{name: email, type: email, description: The caller's email address.}}
  success:
    - {{name: resolved, question: "Did the caller learn where their order is?"}}"""


@dataclass
class WebhookReceiver:
    """The character's post-call webhook endpoint: records every delivery."""

    deliveries: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        return app

    async def _hook(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.deliveries.append(
            {"raw": raw, "body": json.loads(raw), "signature": request.headers.get("X-Oshara-Signature", "")}
        )
        return web.Response(status=204)


def no_voice_env(workdir: Path) -> dict[str, str]:
    """A worker's environment with no voice service at all and no speech recognition.

    No CHATTERBOX_URL, and an empty weights directory, so the embedded service the
    worker would start finds nothing to load; no Deepgram key.
    """
    empty = workdir / "no-voice-weights"
    empty.mkdir(parents=True, exist_ok=True)
    return {"DEEPGRAM_API_KEY": "", "CHATTERBOX_MODEL_DIR": str(empty), "CHATTERBOX_CACHE_DIR": str(empty)}


@dataclass
class VoiceService:
    """One `python -m voice_service serve` with tiny weights, shared by a test run."""

    process: Process
    url: str


def start_voice_service(workdir: Path, model_root: Path) -> VoiceService:
    workdir.mkdir(parents=True, exist_ok=True)
    process = Process(
        "voice service",
        ["-m", "voice_service", "serve", "--host", "127.0.0.1", "--port", "0"],
        {
            "CHATTERBOX_MODEL_DIR": str(model_root),
            "CHATTERBOX_MAX_NEW_TOKENS": "8",
            "CHATTERBOX_DEVICE": "cpu",
            "CHATTERBOX_CACHE_DIR": str(workdir / "cache"),
        },
        workdir / "voice-service.log",
    ).start()
    match = process.wait_for_log(r"OSHARA_TTS_LISTENING (\S+)", timeout=180)
    return VoiceService(process, match.group(1))


class Stack:
    """One test's deployment; see the module docstring. Build it with `run_stack()`."""

    def __init__(
        self,
        workdir: Path,
        voice_url: str | None,
        script: Script,
        transcripts: list[str],
        *,
        deepgram: DeepgramStandIn | None = None,
        openai: OpenAIStandIn | None = None,
    ) -> None:
        if len(ADDRESSES) != 2:
            raise RuntimeError("e2e tests run inside scripts/netns.sh (OSHARA_NETNS_ADDRESSES is not set)")
        self.workdir = workdir
        self.livekit_ip, self.host_ip = ADDRESSES
        self.voice_url = voice_url
        self.agent_name = "e2e-agent-" + uuid.uuid4().hex[:8]
        # a benchmark brings stand-ins of its own latencies, which stamp what they see
        self.deepgram = deepgram or DeepgramStandIn(transcripts=transcripts)
        self.openai = openai or OpenAIStandIn(script=script)
        self.orders = OrdersMCP()
        self.webhooks = WebhookReceiver()
        self.token_server_port = free_port(self.host_ip)
        self.token_server_url = f"http://{self.host_ip}:{self.token_server_port}"
        self.livekit = LiveKitServer(
            LiveKitConfig.with_free_ports(
                self.livekit_ip,
                api_key=API_KEY,
                api_secret=API_SECRET,
                webhook_urls=[f"{self.token_server_url}/livekit/webhook"],
            ),
            workdir / "livekit",
        )
        self.token_server: Process | None = None
        self.workers: list[Process] = []
        self.http: aiohttp.ClientSession | None = None
        self._worker_env: dict[str, str] = {}
        self._token_server_env: dict[str, str] = {}

    # -- the parts -----------------------------------------------------------------

    def start_token_server(self) -> Process:
        n = sum(1 for _ in self.workdir.glob("token-server*.log"))
        self.token_server = Process(
            "token server",
            ["-m", "token_server", "--host", self.host_ip, "--port", str(self.token_server_port)],
            self._token_server_env,
            self.workdir / f"token-server-{n}.log",
        ).start()
        self.token_server.wait_for_http(f"{self.token_server_url}/healthz", timeout=60)
        return self.token_server

    def start_worker(self) -> Process:
        worker = Process(
            f"worker {len(self.workers)}",
            ["-m", "agent", "start", "--log-level", "info"],
            self._worker_env,
            self.workdir / f"worker-{len(self.workers)}.log",
        ).start()
        worker.wait_for_log(r"registered worker", timeout=120)
        self.workers.append(worker)
        return worker

    def lkapi(self) -> api.LiveKitAPI:
        """A RoomService client; close it with `aclose()`."""
        return api.LiveKitAPI(self.livekit.config.http_url, API_KEY, API_SECRET, session=self.http)

    async def room_names(self) -> set[str]:
        lk = self.lkapi()
        rooms = await lk.room.list_rooms(api.ListRoomsRequest())
        return {room.name for room in rooms.rooms}

    # -- the token server's API ------------------------------------------------------

    async def start_session(self, **fields: Any) -> dict[str, Any]:
        """Start a session as a site does: its backend mints a grant with `fields`, its page sends it."""
        assert self.http is not None
        now = int(time.time())
        claims = {"agent": "support", "iat": now, "exp": now + 300, "jti": secrets.token_hex(16), **fields}
        grant = jwt.encode(claims, SERVER_KEY, algorithm="HS256")
        payload = {"agent": "support", "grant": grant}
        async with self.http.post(
            f"{self.token_server_url}/v1/sessions", json=payload, headers={"Origin": ORIGIN}
        ) as resp:
            data = await resp.json()
            assert resp.status == 201, data
            return data

    async def get(self, path: str, **params: str) -> Any:
        assert self.http is not None
        async with self.http.get(
            f"{self.token_server_url}{path}", params=params, headers={"Authorization": f"Bearer {SERVER_KEY}"}
        ) as resp:
            data = await resp.json()
            assert resp.status == 200, data
            return data

    async def session(self, session_id: str) -> dict[str, Any]:
        return await self.get(f"/v1/sessions/{session_id}")

    async def events(self, session_id: str, *types: str) -> list[dict[str, Any]]:
        params = {"limit": "500"}
        if types:
            params["types"] = ",".join(types)
        return (await self.get(f"/v1/sessions/{session_id}/logs", **params))["events"]

    async def call(self, **body: Any) -> tuple[dict[str, Any], User]:
        """Start a session and join it as the user; returns once the greeting was heard."""
        started = await self.start_session(**{"metadata": {"user_id": "u-42", "user_name": "Ada"}, **body})
        user = await User(started["livekit_url"], started["token"]).join()
        await wait_until(lambda: user.agent is not None, 60, "the agent to join the room")
        await wait_until(lambda: user.heard.loud_frames >= 25, 60, "the greeting's audio")
        return started, user

    async def status(self, session_id: str) -> tuple[str, str | None]:
        record = await self.session(session_id)
        return record["status"], record["end_reason"]

    def worker_of(self, room_name: str) -> Process:
        """The worker whose job runs in `room_name` (from the workers' logs)."""
        (worker,) = [w for w in self.workers if room_name in w.log()]
        return worker

    def logs(self) -> str:
        """Every process's log, for a failing test's report."""
        seen = {
            "deepgram finals": self.deepgram.finals,
            "deepgram audio seconds": round(self.deepgram.audio_seconds, 2),
            "llm requests": len(self.openai.requests),
            "mcp calls": len(self.orders.calls),
            "webhooks": len(self.webhooks.deliveries),
        }
        parts = [("stand-ins", json.dumps(seen)), ("livekit", self.livekit.log_tail(200))]
        if self.token_server is not None:
            parts.append((self.token_server.name, self.token_server.log()[-6000:]))
        parts += [(w.name, w.log()[-8000:]) for w in self.workers]
        return "\n".join(f"----- {name} -----\n{text}" for name, text in parts)


@asynccontextmanager
async def run_stack(
    workdir: Path,
    *,
    voice_url: str | None,
    script: Script,
    transcripts: list[str],
    workers: int = 1,
    token_server_env: dict[str, str] | None = None,
    worker_env: dict[str, str] | None = None,
    database_url: str | None = None,
    origin: str = ORIGIN,
    deepgram: DeepgramStandIn | None = None,
    openai: OpenAIStandIn | None = None,
    character_keys: str = E2E_CHARACTER_KEYS,
) -> AsyncIterator[Stack]:
    """Start everything, yield the stack, and stop everything (printing the logs on failure).

    `deepgram` and `openai` replace the default stand-ins (`transcripts` and `script` then
    go unused for them); `character_keys` replaces the character's limits and webhook keys
    (`{webhook_url}` is filled in).
    """
    stack = Stack(workdir, voice_url, script, transcripts, deepgram=deepgram, openai=openai)
    async with AsyncExitStack() as exits:
        stack.http = await exits.enter_async_context(aiohttp.ClientSession())
        dg_url = await _serve(exits, stack.deepgram.app())
        oa_url = await _serve(exits, stack.openai.app())
        hook_url = await _serve(exits, stack.webhooks.app())
        mcp_url = await exits.enter_async_context(serve_mcp(stack.orders.build()))
        characters = workdir / "characters"
        characters.mkdir(parents=True, exist_ok=True)
        (characters / "support.yaml").write_text(
            support_character(
                mcp_url, origin=origin, extra=character_keys.format(webhook_url=f"{hook_url}/hook")
            )
        )
        common = {
            "LIVEKIT_URL": stack.livekit.config.ws_url,
            "LIVEKIT_API_KEY": API_KEY,
            "LIVEKIT_API_SECRET": API_SECRET,
            "AGENT_NAME": stack.agent_name,
            "CHARACTERS_DIR": str(characters),
        }
        stack._token_server_env = {
            **common,
            "DATABASE_URL": database_url or f"sqlite+aiosqlite:///{workdir}/oshara.db",
            "TOKEN_SERVER_API_KEYS": SERVER_KEY,
            "E2E_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "SWEEP_INTERVAL_SECONDS": "1",
            "WEBHOOK_POLL_SECONDS": "0.5",
            # the post-call analysis asks the same OpenAI-compatible stand-in (support_script)
            "ANALYSIS_LLM_BASE_URL": f"{oa_url}/v1",
            "ANALYSIS_LLM_MODEL": "analysis-standin",
            "ANALYSIS_LLM_API_KEY": "oa-e2e-analysis-key",
            "ANALYSIS_POLL_SECONDS": "0.5",
            **(token_server_env or {}),
        }
        stack._worker_env = {
            **common,
            "TOKEN_SERVER_URL": stack.token_server_url,
            "DEEPGRAM_API_KEY": "dg-e2e-key",
            "DEEPGRAM_BASE_URL": f"{dg_url.replace('http://', 'ws://')}/v1/listen",
            "OPENAI_API_KEY": "oa-e2e-key",
            "OPENAI_BASE_URL": f"{oa_url}/v1",
            "ORDERS_MCP_TOKEN": "orders-secret-from-env",
            "LOAD_THRESHOLD": "1",
            "WORKER_HTTP_PORT": "0",
            **({"CHATTERBOX_URL": voice_url} if voice_url else {}),
            **(worker_env or {}),
        }
        exits.callback(stack.livekit.stop)
        await asyncio.to_thread(stack.livekit.start)
        exits.callback(lambda: stack.token_server and stack.token_server.stop())
        await asyncio.to_thread(stack.start_token_server)
        exits.callback(lambda: [w.stop() for w in stack.workers])
        for _ in range(workers):
            await asyncio.to_thread(stack.start_worker)
        try:
            yield stack
        except BaseException:
            print(stack.logs())
            raise


async def _serve(exits: AsyncExitStack, app: web.Application) -> str:
    runner = web.AppRunner(app)
    await runner.setup()
    exits.push_async_callback(runner.cleanup)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}"


def new_id() -> str:
    return secrets.token_hex(4)
