"""The worker's entrypoint under `fake_job_context`, with metadata made by the token server.

The real token server starts a session on the run's real livekit-server; the room
and dispatch metadata that server holds are handed to the entrypoint.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from livekit import rtc
from livekit.agents import JobContext, utils
from livekit.agents.testing import fake_job_context
from livekit.plugins import openai

from agent.conversation import Conversation, SessionModels
from agent.providers import EMBEDDED_VOICE_ERROR_ENV, LocalModels, load_local_models
from agent.settings import Settings
from agent.worker import build_server, console_session, current_load, prewarm, run_session
from contract.session_config import DispatchConfig, SessionConfig
from testkit.audio.audio_io import PushAudioInput, RecordingAudioOutput
from testkit.livekit_server import API_KEY, API_SECRET
from testkit.standins.fake_tts import FakeTTS
from testkit.standins.ingest_standin import IngestStandIn
from testkit.standins.openai_standin import OpenAIStandIn, TextReply, ToolCallReply, last_user_text
from testkit.standins.openai_standin import trailing_tool_results as tool_results
from testkit.waiting import wait_until

pytestmark = pytest.mark.voice

ORIGIN = {"Origin": "https://shop.example.com"}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: these tests are about the worker, not the store."""
    return f"sqlite+aiosqlite:///{tmp_path}/oshara.db"


@pytest.fixture(scope="module")
def local_models() -> LocalModels:
    return load_local_models()


def script(body: dict[str, Any]) -> TextReply | ToolCallReply:
    if any("call is ending" in r for r in tool_results(body)):
        return TextReply("Goodbye Dana!")
    if "bye" in last_user_text(body).lower():
        return ToolCallReply(
            [
                ("record_answer", {"field": "full_name", "value": "Dana Scully"}),
                ("end_call", {"reason": "user is done"}),
            ]
        )
    return TextReply("Happy to help.")


async def started_session(client, livekit) -> tuple[str, str, str]:
    """Start a session through the token server; returns (room name, room metadata, dispatch metadata)."""
    resp = await client.post(
        "/v1/sessions",
        json={
            "agent": "helper",
            "metadata": {"user_name": "Dana", "user_id": "u-42"},
            "mcp_headers": {"X-Tenant": "acme"},
        },
        headers={**ORIGIN, "Authorization": "Bearer server-key-1"},  # the site's server: verified
    )
    assert resp.status == 201, await resp.text()
    room_name = (await resp.json())["room_name"]
    room = await livekit.room(room_name)
    assert room is not None
    (dispatch,) = await livekit.dispatches(room_name)
    return room_name, room.metadata, dispatch.metadata


def fake_room(name: str, metadata: str) -> rtc.Room:
    """A room as the entrypoint sees it after connecting (the fake job does not connect)."""
    room = rtc.Room()
    room._info.name = name
    room._info.metadata = metadata
    return room


@contextlib.contextmanager
def job_context(room: rtc.Room, job_metadata: str) -> Iterator[JobContext]:
    """`fake_job_context`, plus the temporary directory cleanup a real job's shutdown does.

    A fake job's `delete_room()` does nothing; here it records that it was asked, in
    `ctx.closed_rooms` (the e2e call shows a real job's closes the room in LiveKit).
    """
    with fake_job_context(room=room, job_metadata=job_metadata) as ctx:
        closed: list[str] = []

        def delete_room(room_name: str | None = None) -> asyncio.Future[None]:
            closed.append(room_name or room.name)
            done = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

        ctx.delete_room = delete_room  # type: ignore[method-assign]
        ctx.closed_rooms = closed  # type: ignore[attr-defined]
        try:
            yield ctx
        finally:
            ctx._tempdir.cleanup()


async def test_entrypoint_runs_a_session_from_token_server_metadata(
    client, livekit, livekit_server, aiohttp_server, local_models, monkeypatch
):
    monkeypatch.setenv("CRM_TOKEN", "crm-secret")
    room_name, room_md, dispatch_md = await started_session(client, livekit)
    session_id = SessionConfig.from_json(room_md).session_id
    assert DispatchConfig.from_json(dispatch_md).session_id == session_id

    oa = OpenAIStandIn(script=script)
    oa_server = await aiohttp_server(oa.app())
    settings = Settings(
        _env_file=None,
        livekit_url=livekit_server.config.ws_url,  # the worker closes rooms here
        livekit_api_key=API_KEY,
        livekit_api_secret=API_SECRET,
        # the real token server receives the reports
        token_server_url=str(client.make_url("")),
        openai_api_key="oa-key",
        openai_base_url=str(oa_server.make_url("/v1")),
    )
    speaker = RecordingAudioOutput(speed=8.0)
    tts = FakeTTS()

    def build_models(config: SessionConfig, settings: Settings, local: LocalModels) -> SessionModels:
        assert local is local_models  # prewarm's models are reused
        return SessionModels(
            vad=local.vad,
            turn_detector=local.turn_detector,
            stt=None,
            llm=openai.LLM(model=config.llm.model, api_key="oa-key", base_url=settings.openai_base_url),
            tts=tts,
        )

    started: list[Conversation] = []
    shutdowns: list[str] = []
    async with utils.http_context.open():
        with job_context(room=fake_room(room_name, room_md), job_metadata=dispatch_md) as ctx:
            ctx.proc.userdata["oshara_local_models"] = local_models
            ctx._on_shutdown = shutdowns.append
            task = asyncio.create_task(
                run_session(
                    ctx,
                    settings,
                    build_models=build_models,
                    conversation_kwargs={"audio_input": PushAudioInput(), "audio_output": speaker},
                    on_started=started.append,
                )
            )
            await wait_until(lambda: started and speaker.segments, 20, "the greeting")
            conv = started[0]
            conv.session.generate_reply(user_input="I'm Dana Scully. Thanks, bye")
            result = await asyncio.wait_for(task, 30)
            await conv.aclose()

    assert result is conv
    assert "Hello Dana!" in tts.texts  # the rendered greeting from the token server
    assert any("Goodbye Dana" in t for t in tts.texts)
    # the job closed the room (JobContext.delete_room) and left
    assert ctx.closed_rooms == [room_name]
    assert shutdowns == ["user is done"]
    # the LLM saw the metadata block and the form tool; the unreachable MCP server is a note
    tools = {t["function"]["name"] for t in oa.requests[0]["tools"]}
    assert {"record_answer", "end_call"} <= tools
    assert "'crm' service is unavailable" in oa.requests[0]["messages"][0]["content"]

    # what the token server recorded, as its API returns it
    key = {"Authorization": "Bearer server-key-1"}
    resp = await client.get(f"/v1/sessions/{session_id}/logs", headers=key)
    assert resp.status == 200, await resp.text()
    events = (await resp.json())["events"]
    kinds = [e["type"] for e in events]
    assert {
        "session_started",
        "user_joined",
        "transcript",
        "tool_call",
        "form_updated",
        "session_ended",
    } <= set(kinds)
    assert any(e["type"] == "error" and e["source"] == "mcp" and "crm" in e["message"] for e in events)
    assert next(e for e in events if e["type"] == "session_ended")["reason"] == "user is done"
    resp = await client.get(f"/v1/sessions/{session_id}/form", headers=key)
    fields = {f["name"]: f for f in (await resp.json())["fields"]}
    assert fields["full_name"]["value"] == "Dana Scully"


async def test_missing_environment_skips_the_mcp_server_and_says_why(
    client, livekit, livekit_server, aiohttp_server, local_models, monkeypatch
):
    monkeypatch.delenv("CRM_TOKEN", raising=False)
    room_name, room_md, dispatch_md = await started_session(client, livekit)
    session_id = SessionConfig.from_json(room_md).session_id
    ingest = IngestStandIn(api_key=API_KEY, api_secret=API_SECRET)
    ingest_server = await aiohttp_server(ingest.app())
    oa = OpenAIStandIn(script=script)
    oa_server = await aiohttp_server(oa.app())
    settings = Settings(
        _env_file=None,
        livekit_url=livekit_server.config.ws_url,  # the worker closes rooms here
        livekit_api_key=API_KEY,
        livekit_api_secret=API_SECRET,
        token_server_url=str(ingest_server.make_url("")),
        openai_api_key="oa-key",
        openai_base_url=str(oa_server.make_url("/v1")),
    )

    def build_models(config: SessionConfig, settings: Settings, local: LocalModels) -> SessionModels:
        return SessionModels(
            vad=local.vad,
            turn_detector=local.turn_detector,
            stt=None,
            llm=openai.LLM(model="m", api_key="oa-key", base_url=settings.openai_base_url),
            tts=FakeTTS(),
        )

    started: list[Conversation] = []
    async with utils.http_context.open():
        with job_context(room=fake_room(room_name, room_md), job_metadata=dispatch_md) as ctx:
            ctx.proc.userdata["oshara_local_models"] = local_models
            ctx._on_shutdown = lambda reason: None
            task = asyncio.create_task(
                run_session(
                    ctx,
                    settings,
                    build_models=build_models,
                    conversation_kwargs={
                        "audio_input": PushAudioInput(),
                        "audio_output": RecordingAudioOutput(speed=8.0),
                    },
                    on_started=started.append,
                )
            )
            await wait_until(lambda: bool(started), 20, "the session")
            started[0].session.shutdown(drain=False)
            await asyncio.wait_for(task, 20)
            await started[0].aclose()

    errors = ingest.of(session_id, "error")
    assert any("CRM_TOKEN" in e["message"] and e["source"] == "mcp" for e in errors)
    # the environment variable's name is reported, never a value; no room deletion without end_call
    assert ctx.closed_rooms == []
    assert await livekit.exists(room_name)


@pytest.mark.parametrize(
    ("room_md", "expected"),
    [("", "invalid session configuration in room metadata"), ('{"version": 1}', "invalid session")],
)
async def test_invalid_room_metadata_is_reported_and_the_job_leaves(aiohttp_server, room_md, expected):
    ingest = IngestStandIn(api_key=API_KEY, api_secret=API_SECRET)
    ingest_server = await aiohttp_server(ingest.app())
    settings = Settings(
        _env_file=None,
        livekit_api_key=API_KEY,
        livekit_api_secret=API_SECRET,
        token_server_url=str(ingest_server.make_url("")),
    )
    dispatch = DispatchConfig(session_id="sess_bad_room").to_json()
    shutdowns: list[str] = []
    with job_context(room=fake_room("r1", room_md), job_metadata=dispatch) as ctx:
        ctx._on_shutdown = shutdowns.append
        assert await run_session(ctx, settings) is None
    assert shutdowns == ["invalid session configuration"]
    events = ingest.of("sess_bad_room")
    assert [e["type"] for e in events] == ["error", "session_ended"]
    assert events[0]["source"] == "config" and events[0]["recoverable"] is False
    assert expected in events[0]["message"]


async def test_mismatched_session_ids_are_refused(aiohttp_server):
    ingest = IngestStandIn(api_key=API_KEY, api_secret=API_SECRET)
    ingest_server = await aiohttp_server(ingest.app())
    settings = Settings(
        _env_file=None,
        livekit_api_key=API_KEY,
        livekit_api_secret=API_SECRET,
        token_server_url=str(ingest_server.make_url("")),
    )
    config, _ = console_session("support-bot", settings)
    dispatch = DispatchConfig(session_id="sess_other").to_json()
    with job_context(room=fake_room("r1", config.to_json()), job_metadata=dispatch) as ctx:
        ctx._on_shutdown = lambda reason: None
        assert await run_session(ctx, settings) is None
    assert "different sessions" in ingest.of("sess_other", "error")[0]["message"]


async def test_invalid_dispatch_metadata_leaves_without_crashing():
    settings = Settings(_env_file=None, token_server_url="http://127.0.0.1:9")
    shutdowns: list[str] = []
    with job_context(room=fake_room("r1", ""), job_metadata="not json") as ctx:
        ctx._on_shutdown = shutdowns.append
        assert await run_session(ctx, settings) is None
    assert shutdowns == ["invalid dispatch metadata"]


def test_server_is_dispatched_by_name_with_prewarm():
    server = build_server(Settings(_env_file=None, agent_name="oshara-test-agent"))
    assert server._agent_name == "oshara-test-agent"
    assert server.setup_fnc is prewarm
    assert server.load_fnc is not None


def test_load_is_between_zero_and_one():
    class Busy:
        active_jobs = [object()] * 1000

    assert current_load(Busy()) == 1.0  # type: ignore[arg-type]
    assert 0.0 <= current_load(build_server(Settings(_env_file=None))) <= 1.0


def test_job_processes_are_kept_warm_in_dev_too():
    # livekit-agents keeps none under `dev`: the first call would wait for a process to
    # start, and a second arriving meanwhile would find the worker full
    default = build_server(Settings(_env_file=None))._num_idle_processes
    assert default.dev_default >= 1 and default.prod_default >= 1
    assert build_server(Settings(_env_file=None, idle_processes=0))._num_idle_processes == 0


def test_load_counts_sessions_only_at_threshold_one():
    class Two:
        active_jobs = [object(), object()]

    assert current_load(Two(), max_sessions=4, count_cpu=False) == 0.5  # type: ignore[arg-type]
    assert current_load(Two(), max_sessions=2, count_cpu=False) == 1.0  # type: ignore[arg-type]
    server = build_server(Settings(_env_file=None, load_threshold=1, max_sessions_per_worker=2))
    assert server.load_fnc(server) == 0.0  # no session yet, and the CPU is not counted


def test_load_counts_the_cores_the_worker_may_use(monkeypatch):
    # a worker pinned to one core (taskset, a cpuset) of a bigger machine
    class One:
        active_jobs = [object()]

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert current_load(One(), count_cpu=False) == 0.5  # type: ignore[arg-type]  # 2 sessions per core
    assert 0.0 <= current_load(One()) <= 1.0  # type: ignore[arg-type]


def test_console_session_renders_the_character_without_metadata():
    config, dispatch = console_session("support-bot", Settings(_env_file=None))
    assert config.character == "support-bot"
    assert "Sam from support" in config.greeting and "{{" not in config.greeting
    assert "{{" not in config.system_prompt
    assert dispatch.mcp_server_headers == {"orders": {"Authorization": "Bearer ${ORDERS_MCP_TOKEN}"}}


async def test_missing_providers_are_each_named_in_the_log_and_the_session_record(
    client, livekit, local_models, monkeypatch, caplog
):
    # no provider keys, no voice service: what `make dev` gives a newcomer
    why = "the embedded voice service cannot start: fetch it with `python -m voice_service download chatterbox-en-v1`"
    monkeypatch.setenv(EMBEDDED_VOICE_ERROR_ENV, why)
    room_name, room_md, dispatch_md = await started_session(client, livekit)
    session_id = SessionConfig.from_json(room_md).session_id
    settings = Settings(
        _env_file=None,
        livekit_api_key=API_KEY,
        livekit_api_secret=API_SECRET,
        token_server_url=str(client.make_url("")),
        deepgram_api_key="",  # `DEEPGRAM_API_KEY=` in a copied .env.example is not a key
    )
    shutdowns: list[str] = []
    with job_context(room=fake_room(room_name, room_md), job_metadata=dispatch_md) as ctx:
        ctx.proc.userdata["oshara_local_models"] = local_models
        ctx._on_shutdown = shutdowns.append
        assert await run_session(ctx, settings) is None
    assert shutdowns == ["provider not configured"]

    resp = await client.get(
        f"/v1/sessions/{session_id}/logs", headers={"Authorization": "Bearer server-key-1"}
    )
    assert resp.status == 200, await resp.text()
    events = (await resp.json())["events"]
    errors = [e for e in events if e["type"] == "error"]
    assert all(e["source"] == "config" and e["recoverable"] is False for e in errors)
    messages = [e["message"] for e in errors]
    assert len(messages) == 3
    assert messages[0].startswith("DEEPGRAM_API_KEY is not set")
    assert messages[1].startswith("OPENAI_API_KEY is not set") and "OPENAI_BASE_URL" in messages[1]
    assert messages[2] == f"CHATTERBOX_URL is not set and {why}: no voice"
    assert next(e for e in events if e["type"] == "session_ended")["reason"] == "provider not configured"
    # the worker's log says the same, one line each
    logged = [r.missing for r in caplog.records if r.getMessage() == "a provider is not configured; leaving"]
    assert logged == messages
