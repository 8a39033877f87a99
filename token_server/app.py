"""The token server application: `create_app(settings)` builds it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import sqlalchemy as sa
from aiohttp import web

from contract import Character, load_characters

from .access import check_caller_may_start, cors_middleware, identify_caller
from .analysis import PostCallAnalysis
from .analysis_views import AnalysisViews
from .character_reload import CharacterReload
from .character_versions import CharacterVersions
from .db import Database, migrate
from .errors import NotFound, error_middleware, read_json
from .grants import warn_about_short_keys
from .headers import header_middleware
from .http_server import PARSER_LOG
from .lifecycle import SessionLifecycle
from .livekit import LiveKitRooms
from .livekit_webhooks import LiveKitWebhooks
from .openapi import OPENAPI, build_document, openapi_view
from .post_call import PostCallWebhooks, RetryPolicy
from .records import SessionRecords
from .retrieval import Retrieval
from .schemas import MAX_BODY_BYTES
from .session_start import StartContext, idempotency_key, parse_request, start_session
from .settings import Settings
from .static_files import STATIC_FILES, StaticFiles, widget_chunk_view, widget_view
from .store import SessionStore
from .strict_json import json_response
from .worker_events import WorkerEvents

log = logging.getLogger("token_server")

STATIC_DIR = Path(__file__).resolve().parent / "static"

SETTINGS = web.AppKey("settings", Settings)
CHARACTERS = web.AppKey("characters", dict[str, Character])
# Each loaded character's current version, by slug; filled at start-up, replaced by reloads.
VERSIONS = web.AppKey("versions", dict[str, str])
START = web.AppKey("start", StartContext)
DB = web.AppKey("db", Database)
LIFECYCLE = web.AppKey("lifecycle", SessionLifecycle)
WEBHOOKS = web.AppKey("webhooks", PostCallWebhooks)
LIVEKIT_WEBHOOKS = web.AppKey("livekit_webhooks", LiveKitWebhooks)
WORKER_EVENTS = web.AppKey("worker_events", WorkerEvents)
RETRIEVAL = web.AppKey("retrieval", Retrieval)
ANALYSIS = web.AppKey("analysis", PostCallAnalysis)
ANALYSIS_VIEWS = web.AppKey("analysis_views", AnalysisViews)
RELOAD = web.AppKey("reload", CharacterReload)


async def start_session_view(request: web.Request) -> web.Response:
    """`POST /v1/sessions`: start a session with a character."""
    app = request.app
    raw = await read_json(request, max_bytes=MAX_BODY_BYTES)
    body = parse_request(raw)
    character = app[CHARACTERS].get(body.agent)
    if character is None or not character.active:
        raise NotFound(f"No active character is called {body.agent!r}.", code="character_not_found")
    # Read with the character, before any await: a reload swaps both at once.
    version = app[VERSIONS].get(character.slug)
    caller = identify_caller(request, app[SETTINGS].token_server_api_keys, grant=body.grant)
    check_caller_may_start(caller, character)
    key = idempotency_key(request.headers.get("Idempotency-Key"))
    result, created = await start_session(
        app[START], character=character, body=body, raw=raw, caller=caller, key=key, version=version
    )
    return json_response(result, status=201 if created else 200)


async def characters_view(request: web.Request) -> web.Response:
    """`GET /v1/characters`: the active characters, without prompts or secrets."""
    out = [
        {
            "slug": c.slug,
            "name": c.name,
            "description": c.description,
            "language": c.language,
            "voice_model": c.voice_model,
            "greeting": c.greeting,
            "form": [f.model_dump() for f in c.form.fields] if c.form else None,
        }
        for c in request.app[CHARACTERS].values()
        if c.active
    ]
    return json_response({"characters": out})


async def health_view(request: web.Request) -> web.Response:
    """`GET /healthz`: 200 once the server is up and its database answers."""
    try:
        async with request.app[DB].connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except Exception:
        log.warning("health check: database unavailable", exc_info=True)
        return json_response({"status": "unavailable"}, status=503)
    return json_response({"status": "ok", "characters": len(request.app[CHARACTERS])})


async def demo_view(request: web.Request) -> web.StreamResponse:
    """`GET /`: the demo page, to try every active character."""
    path = STATIC_DIR / "demo.html"
    if not path.is_file():
        raise NotFound("The demo page is not available.")
    return web.FileResponse(path)


async def demo_asset_view(request: web.Request) -> web.StreamResponse:
    """`GET /static/demo/{filename}`: the demo page's script and styles, by name."""
    path = STATIC_DIR / "demo" / request.match_info["filename"]
    # Only the files that are there, by their plain names: nothing above, nothing hidden.
    if path.parent != STATIC_DIR / "demo" or path.name.startswith(".") or not path.is_file():
        raise NotFound("No such file.")
    return web.FileResponse(path)


async def every(seconds: float, job: Callable[[], Awaitable[object]], failed: str) -> None:
    """Run `job` every `seconds` until cancelled; a failed run is logged and the next goes on."""
    while True:
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(failed)
        await asyncio.sleep(seconds)


def _delegate(key: web.AppKey, method: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A handler calling `method` of the object the app holds at `key` (made at start-up)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return await getattr(request.app[key], method)(request)

    return handler


def create_app(settings: Settings, *, reload_on_sighup: bool = False) -> web.Application:
    """Build the token server for `settings`.

    Characters are loaded (and validated) now, so a bad file stops start-up; the
    database is migrated and the LiveKit client opened when the app starts. With
    `reload_on_sighup` (what `python -m token_server` runs), SIGHUP reloads them: a
    signal handler is the process's, so only the server that owns the process sets one.
    """
    characters = load_characters(settings.characters_dir)
    warn_about_short_keys(settings.token_server_api_keys, log)
    app = web.Application(
        middlewares=[header_middleware, cors_middleware(lambda: characters.values()), error_middleware],
        client_max_size=1024**2,
        # The server's own log, so a request its parser refuses never logs the bytes it carried.
        handler_args={"logger": PARSER_LOG},
    )
    app[SETTINGS] = settings
    app[CHARACTERS] = characters
    versions: dict[str, str] = {}
    app[VERSIONS] = versions
    app[OPENAPI] = build_document()
    app[STATIC_FILES] = StaticFiles(STATIC_DIR)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        db = Database(settings.database_url)
        await migrate(db)
        registry = CharacterVersions(db)
        versions.update(await registry.register(characters))
        timeout = aiohttp.ClientTimeout(total=settings.livekit_timeout_seconds)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            store = SessionStore(db)
            records = SessionRecords(store)
            rooms = LiveKitRooms(settings, http)
            lifecycle = SessionLifecycle(
                store,
                characters,
                rooms,
                reconcile_grace_seconds=settings.reconcile_grace_seconds,
                analysis_wait_seconds=settings.analysis_webhook_wait_seconds,
            )
            webhooks = PostCallWebhooks(
                db,
                http,
                characters,
                records.post_call_payload,
                policy=RetryPolicy(
                    base=settings.webhook_retry_base_seconds,
                    cap=settings.webhook_retry_max_seconds,
                    window=settings.webhook_retry_window_seconds,
                ),
                timeout_seconds=settings.webhook_timeout_seconds,
            )
            app[DB] = db
            app[START] = StartContext(settings=settings, store=store, rooms=rooms)
            app[LIFECYCLE] = lifecycle
            app[WEBHOOKS] = webhooks
            app[LIVEKIT_WEBHOOKS] = LiveKitWebhooks(settings, store, lifecycle)
            app[WORKER_EVENTS] = WorkerEvents(settings, store, lifecycle)
            app[RETRIEVAL] = Retrieval(settings, records, registry, versions)
            analysis = PostCallAnalysis(db, http, settings, records, registry)
            app[ANALYSIS] = analysis
            app[ANALYSIS_VIEWS] = AnalysisViews(settings, records, analysis, registry, versions)
            reload = CharacterReload(settings, characters, versions, registry)
            app[RELOAD] = reload
            loop = asyncio.get_running_loop()
            on_sighup = reload_on_sighup and hasattr(signal, "SIGHUP")
            if on_sighup:
                loop.add_signal_handler(signal.SIGHUP, reload.on_signal)
            tasks = [
                asyncio.create_task(
                    every(settings.sweep_interval_seconds, lifecycle.sweep, "session sweep failed"),
                    name="session-sweeper",
                ),
                asyncio.create_task(
                    every(
                        settings.reconcile_interval_seconds, lifecycle.reconcile, "session reconcile failed"
                    ),
                    name="session-reconciler",
                ),
                asyncio.create_task(
                    every(settings.webhook_poll_seconds, webhooks.deliver_due, "webhook delivery failed"),
                    name="post-call-webhooks",
                ),
                asyncio.create_task(
                    every(settings.analysis_poll_seconds, analysis.run_due, "post-call analysis failed"),
                    name="post-call-analysis",
                ),
            ]
            yield
            if on_sighup:
                with contextlib.suppress(RuntimeError, ValueError):
                    loop.remove_signal_handler(signal.SIGHUP)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await reload.aclose()
        await db.dispose()

    app.cleanup_ctx.append(resources)
    app.router.add_post("/v1/sessions", start_session_view)
    app.router.add_get("/v1/sessions", _delegate(RETRIEVAL, "list"))
    app.router.add_get("/v1/sessions/{session_id}", _delegate(RETRIEVAL, "session"))
    app.router.add_get("/v1/sessions/{session_id}/logs", _delegate(RETRIEVAL, "logs"))
    app.router.add_get("/v1/sessions/{session_id}/form", _delegate(RETRIEVAL, "form"))
    app.router.add_get("/v1/sessions/{session_id}/analysis", _delegate(ANALYSIS_VIEWS, "get"))
    app.router.add_post("/v1/sessions/{session_id}/analysis", _delegate(ANALYSIS_VIEWS, "rerun"))
    app.router.add_post("/internal/v1/sessions/{session_id}/events", _delegate(WORKER_EVENTS, "receive"))
    app.router.add_post("/livekit/webhook", _delegate(LIVEKIT_WEBHOOKS, "receive"))
    app.router.add_get("/v1/characters", characters_view)
    app.router.add_post("/v1/characters/reload", _delegate(RELOAD, "view"))
    app.router.add_get("/v1/characters/{slug}/versions", _delegate(RETRIEVAL, "character_versions"))
    app.router.add_get("/healthz", health_view)
    app.router.add_get("/openapi.json", openapi_view)
    app.router.add_get("/widget.js", widget_view)
    app.router.add_get("/widget/{filename}", widget_chunk_view)
    app.router.add_get("/", demo_view)
    if (STATIC_DIR / "demo").is_dir():
        # A handler of our own, not add_static: its 404s and 403s are in the error shape.
        app.router.add_get("/static/demo/{filename}", demo_asset_view)
    return app
