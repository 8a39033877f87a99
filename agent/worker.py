"""The livekit-agents worker: one job per session room, dispatched by name.

`build_server()` makes the `AgentServer`; `prewarm` loads Silero VAD and the local
end-of-turn model once per process; `entrypoint` runs one session:

1. parse the dispatch metadata (session id, secret MCP headers);
2. connect, then parse the room metadata from the *connected* room (a dispatch
   made through CreateRoom carries no room snapshot);
3. build STT, LLM and TTS (the LLM alone for a text-only session), connect the MCP
   servers, start the pipeline;
4. greet the user once they join; report everything through the ingest client;
5. when the session closes: report the end, delete the room if the call was
   ended on purpose, flush the reports, and leave.

A missing or invalid configuration is reported (when the session id is known)
and the job leaves the room cleanly: the worker process never crashes on it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from livekit.agents import AgentServer, JobContext, JobProcess
from livekit.agents.worker import ServerEnvOption
from pydantic import ValidationError

from contract.events import Error, SessionEnded, SessionEvent, UserJoined
from contract.ingest_token import quiet_short_secret
from contract.loader import load_characters
from contract.session_config import DispatchConfig, SessionConfig
from contract.templates import render
from contract.voice_models import resolve_voice_model

from .conversation import Conversation, SessionModels, greet, start_conversation
from .ingest import IngestClient
from .providers import (
    LocalModels,
    ProviderUnavailable,
    build_llm,
    build_stt,
    build_tts,
    load_local_models,
    session_vad,
)
from .settings import Settings

logger = logging.getLogger("oshara.agent.worker")

CONSOLE_CHARACTER_ENV = "OSHARA_CONSOLE_CHARACTER"
"""Set by `python -m agent console --character SLUG`: the character the console talks to."""

_MODELS_KEY = "oshara_local_models"

PRELOAD_MODULES = [__name__]
"""Imported once in the worker's forkserver, beside livekit's own preloads: every job
process inherits this module and what it imports (the conversation, MCP, pydantic
models) copy-on-write instead of importing its own private copy."""


def prewarm(proc: JobProcess) -> None:
    """Load the local models once per worker process; every job in it shares them."""
    proc.userdata[_MODELS_KEY] = load_local_models()


def _local_models(ctx: JobContext) -> LocalModels:
    models = ctx.proc.userdata.get(_MODELS_KEY)
    if models is None:
        models = load_local_models()
        ctx.proc.userdata[_MODELS_KEY] = models
    return models


def console_session(slug: str, settings: Settings) -> tuple[SessionConfig, DispatchConfig]:
    """A session of the character `slug` for the console: no token server involved.

    Raises:
        KeyError: no such character in `settings.characters_dir`.
    """
    character = load_characters(settings.characters_dir)[slug]
    session_id = "console"
    config = SessionConfig.for_character(
        session_id,
        character,
        language=character.language,
        system_prompt=render(character.system_prompt, {}),
        greeting=render(character.greeting, {}),
        voice_model=resolve_voice_model(
            requested=None, default=character.voice_model, language=character.language
        ).name,
        reference_audio_url=str(character.reference_audio_url) if character.reference_audio_url else None,
        metadata={},
    )
    return config, DispatchConfig.for_session(session_id, character, {})


def _log_report(event: SessionEvent) -> None:
    logger.debug("session event", extra={"event": event.model_dump(mode="json")})


async def entrypoint(ctx: JobContext) -> None:
    """Run one session in the job's room."""
    settings = Settings()
    # `python -m agent` said so once at start-up; no warning per token in every job
    quiet_short_secret(settings.livekit_api_secret.get_secret_value())
    await run_session(ctx, settings)


async def run_session(
    ctx: JobContext,
    settings: Settings,
    *,
    build_models: Callable[[SessionConfig, Settings, LocalModels], SessionModels] | None = None,
    conversation_kwargs: dict[str, Any] | None = None,
    on_started: Callable[[Conversation], None] | None = None,
) -> Conversation | None:
    """The entrypoint's work; `build_models`, `conversation_kwargs` and `on_started` let tests in.

    A job whose room is not connected (a fake job: console or tests) runs without
    RoomIO; the console or the test provides the audio input and output.

    Returns the conversation once it has closed, or None when it never started.
    """
    console_slug = os.environ.get(CONSOLE_CHARACTER_ENV) if ctx.is_fake_job() else None
    ingest: IngestClient | None = None
    report: Callable[[SessionEvent], None] = _log_report

    async def leave(reason: str, *, close_room: bool = False) -> None:
        if ingest is not None:
            await ingest.aclose()
        if close_room:
            # nobody can be helped in this room: close it rather than leave the user in silence
            await ctx.delete_room()
        ctx.shutdown(reason=reason)

    if console_slug:
        try:
            config, dispatch = console_session(console_slug, settings)
        except KeyError:
            logger.error("no such character", extra={"character": console_slug})
            await leave("unknown character")
            return None
    else:
        try:
            dispatch = DispatchConfig.from_json(ctx.job.metadata)
        except ValidationError:
            # without a session id there is nobody to report to
            logger.error("invalid or missing dispatch metadata; leaving", extra={"job_id": ctx.job.id})
            await leave("invalid dispatch metadata")
            return None
        ingest = IngestClient(
            base_url=settings.token_server_url,
            api_key=settings.livekit_api_key,
            api_secret=settings.livekit_api_secret.get_secret_value(),
            session_id=dispatch.session_id,
        )
        report = ingest.emit
        await ctx.connect()
        try:
            config = SessionConfig.from_json(ctx.room.metadata)
            if config.session_id != dispatch.session_id:
                raise ValueError("room and dispatch metadata name different sessions")
        except (ValidationError, ValueError) as exc:
            logger.error(
                "invalid or missing room metadata; leaving", extra={"session_id": dispatch.session_id}
            )
            message = "invalid session configuration in room metadata"
            if isinstance(exc, ValueError) and not isinstance(exc, ValidationError):
                message = str(exc)
            report(Error(source="config", message=message, recoverable=False))
            report(SessionEnded(reason="invalid session configuration"))
            await leave("invalid session configuration", close_room=True)
            return None

    try:
        return await _converse(
            ctx,
            settings,
            config,
            dispatch,
            report=report,
            ingest=ingest,
            leave=leave,
            build_models=build_models or _build_models,
            conversation_kwargs=conversation_kwargs or {},
            on_started=on_started,
        )
    except Exception as exc:
        # never crash the job on a bug or an unexpected failure: report it and leave cleanly
        logger.exception("session failed", extra={"session_id": config.session_id})
        report(Error(source="agent", message=f"{type(exc).__name__}: {exc}"[:2000], recoverable=False))
        report(SessionEnded(reason="agent error"))
        await leave("agent error", close_room=True)
        return None


async def _converse(
    ctx: JobContext,
    settings: Settings,
    config: SessionConfig,
    dispatch: DispatchConfig,
    *,
    report: Callable[[SessionEvent], None],
    ingest: IngestClient | None,
    leave: Callable[..., Awaitable[None]],
    build_models: Callable[[SessionConfig, Settings, LocalModels], SessionModels],
    conversation_kwargs: dict[str, Any],
    on_started: Callable[[Conversation], None] | None,
) -> Conversation | None:
    try:
        models = build_models(config, settings, _local_models(ctx))
    except ProviderUnavailable as exc:
        # the job has joined the room: say what is missing, to the log and to the record
        for missing in exc.missing:
            logger.error(
                "a provider is not configured; leaving",
                extra={"session_id": config.session_id, "missing": missing},
            )
            report(Error(source="config", message=missing, recoverable=False))
        report(SessionEnded(reason="provider not configured"))
        await leave("provider not configured", close_room=True)
        return None

    conversation = await start_conversation(
        config=config,
        dispatch=dispatch,
        settings=settings,
        models=models,
        report=report,
        room=ctx.room if ctx.room.isconnected() else None,
        **conversation_kwargs,
    )
    if on_started is not None:
        on_started(conversation)
    if ingest is not None:

        async def flush_reports() -> None:
            await ingest.aclose()

        ctx.add_shutdown_callback(flush_reports)

    try:
        # also bounds a user who never joins
        async with asyncio.timeout(config.max_duration_seconds):
            # The user is in the room: this meets the session's join window. In a fake
            # job (console, tests) the local audio is the user.
            identity = "local"
            if not ctx.is_fake_job():
                identity = (await ctx.wait_for_participant()).identity
            report(UserJoined(identity=identity))
            greet(conversation, config)
            await conversation.wait_closed()
    except TimeoutError:
        conversation.reporter.end_reason = "maximum duration reached"
        conversation.session.shutdown(drain=True)
        await conversation.wait_closed()

    await conversation.mcp.aclose()
    if conversation.end_call.requested:
        if ingest is not None:
            # the record says why the call ended before LiveKit's room_finished does
            await ingest.aclose()
        await ctx.delete_room()  # LiveKit disconnects everyone; a fake job (console, tests) has no room
    await leave(conversation.reporter.end_reason or "session closed")
    return conversation


def _build_models(config: SessionConfig, settings: Settings, local: LocalModels) -> SessionModels:
    """The session's models; every one that cannot be built is named in one ProviderUnavailable.

    A text-only session needs the LLM alone: no STT, VAD or TTS is built, so the voice
    service and its weights are never looked for.
    """
    if config.mode == "text":
        return SessionModels(
            vad=None, turn_detector=None, stt=None, llm=build_llm(config, settings), tts=None
        )
    console = bool(os.environ.get(CONSOLE_CHARACTER_ENV))
    missing: list[str] = []

    def build(builder: Callable[[SessionConfig, Settings], Any], what: str | None) -> Any:
        # the console's text mode needs neither STT nor TTS (`what` names them); a real
        # session needs all three
        try:
            return builder(config, settings)
        except ProviderUnavailable as exc:
            if console and what:
                logger.warning("no %s configured: the console runs text only", what)
            else:
                missing.extend(exc.missing)
            return None

    stt, llm, tts = build(build_stt, "STT"), build(build_llm, None), build(build_tts, "TTS")
    if missing:
        raise ProviderUnavailable(*missing)
    return SessionModels(
        vad=session_vad(local.vad, config.turn), turn_detector=local.turn_detector, stt=stt, llm=llm, tts=tts
    )


def usable_cores() -> list[int]:
    """The cores this process may run on (`taskset`, a container's cpuset): not always all the machine's."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this platform (macOS)
        return list(range(os.cpu_count() or 1))


def current_load(server: AgentServer, *, max_sessions: int | None = None, count_cpu: bool = True) -> float:
    """The worker's load, 0..1: the busier of CPU (unless `count_cpu` is false) and sessions.

    `max_sessions` running sessions are a load of 1; by default two per core the worker may
    use. CPU is the average over those cores only: a worker pinned to one core of many is
    full when that core is, not when the machine is.
    """
    import psutil

    try:
        running = len(server.active_jobs)
    except Exception:  # the process pool is not started yet
        running = 0
    cores = usable_cores()
    jobs = running / (max_sessions or max(2 * len(cores), 1))
    cpu = 0.0
    if count_cpu:
        per_core = psutil.cpu_percent(percpu=True)  # average since the previous call
        mine = [per_core[c] for c in cores if c < len(per_core)] or per_core
        cpu = sum(mine) / len(mine) / 100.0
    return max(0.0, min(1.0, max(cpu, jobs)))


def build_server(settings: Settings) -> AgentServer:
    """The worker, dispatched explicitly by `settings.agent_name`."""
    # LOAD_THRESHOLD=1 counts sessions only: livekit-agents refuses a threshold above 1
    # outside dev mode, and a busy CPU (a load of 1.0) would otherwise count as full.
    load = functools.partial(
        current_load,
        max_sessions=settings.max_sessions_per_worker,
        count_cpu=settings.load_threshold < 1,
    )
    port: dict[str, Any] = {} if settings.worker_http_port is None else {"port": settings.worker_http_port}
    idle = settings.idle_processes
    server = AgentServer(
        **port,
        num_idle_processes=(
            ServerEnvOption(dev_default=2, prod_default=min(os.cpu_count() or 1, 4)) if idle is None else idle
        ),
        setup_fnc=prewarm,
        preload_modules=PRELOAD_MODULES,
        load_fnc=load,
        load_threshold=settings.load_threshold,
        job_memory_warn_mb=settings.job_memory_warn_mb,
        initialize_process_timeout=settings.process_start_timeout_seconds,
        ws_url=settings.livekit_url,
        api_key=settings.livekit_api_key,
        api_secret=settings.livekit_api_secret.get_secret_value(),
    )
    server.rtc_session(entrypoint, agent_name=settings.agent_name)
    return server
