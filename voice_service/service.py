"""The voice service: an aiohttp app that owns the chatterbox models.

    POST /v1/speech   protocol.SpeechRequest: {"text", "voice_model", "language", "reference_audio_url", "voice"}
                      -> 200, body: 16-bit little-endian PCM, 24 kHz mono, streamed sentence by sentence
    GET  /v1/voices   -> the voice models, and which ones this process serves
    GET  /healthz     -> loaded models, queue depth, conditionals cache counters

Response headers of /v1/speech: `X-Sample-Rate`, `X-Channels`, `X-Voice` ("cloned" or
"default"), `X-Voice-Fallback` (a reason code when a reference clip was refused) and
`X-Voice-Cache` (where the cloned voice came from: memory, disk, shared, computed).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractResolver
from pydantic import ValidationError

from contract.voice_models import VOICE_MODELS, VoiceModelError, primary_subtag

from .conditionals import ConditionalsCache
from .engine import VoiceEngine
from .log import logger
from .protocol import (
    HEALTH_PATH,
    NUM_CHANNELS,
    SAMPLE_RATE_HEADER,
    SPEECH_PATH,
    VOICE_FALLBACK_HEADER,
    SpeechRequest,
)
from .reference import ReferenceAudioRejected, ReferenceFetcher, limits_from, redacted_host
from .settings import ServiceSettings
from .text import split_text

SETTINGS = web.AppKey("settings", ServiceSettings)
ENGINES = web.AppKey("engines", dict[str, VoiceEngine])
CACHE = web.AppKey("conditionals_cache", ConditionalsCache)
FETCHER = web.AppKey("reference_fetcher", ReferenceFetcher)

REASON_CONDITIONALS_FAILED = "conditionals_failed"


class ReferenceMemo:
    """What each (voice model, reference URL) gave recently: a clip's hash, or a refusal.

    Bounded in size; entries expire after `ttl` seconds.
    """

    def __init__(self, *, ttl: float, capacity: int = 4096) -> None:
        self._ttl = ttl
        self._capacity = capacity
        self._entries: OrderedDict[tuple[str, str], tuple[float, str, str]] = OrderedDict()

    def get(self, model: str, url: str) -> tuple[str, str] | None:
        """("ok", sha256) or ("refused", reason), while fresh."""
        entry = self._entries.get((model, url))
        if entry is None:
            return None
        expires, kind, value = entry
        if expires < time.monotonic():
            del self._entries[(model, url)]
            return None
        return kind, value

    def put(self, model: str, url: str, kind: str, value: str) -> None:
        """Remember an outcome for `ttl` seconds."""
        if self._ttl <= 0:
            return
        self._entries[(model, url)] = (time.monotonic() + self._ttl, kind, value)
        self._entries.move_to_end((model, url))
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)


MEMO = web.AppKey("reference_memo", ReferenceMemo)


class RequestError(Exception):
    """A request the service refuses; mapped to a JSON error by the middleware."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Map domain errors to JSON responses; never a stack trace to the client."""
    try:
        return await handler(request)
    except RequestError as exc:
        return web.json_response({"error": {"code": exc.code, "message": exc.message}}, status=exc.status)


def _resolve_model(body: SpeechRequest, engines: Mapping[str, VoiceEngine]) -> tuple[VoiceEngine, str | None]:
    model = VOICE_MODELS.get(body.voice_model)
    if model is None:
        raise RequestError(422, "unknown_voice_model", f"unknown voice model {body.voice_model!r}")
    engine = engines.get(model.name)
    if engine is None:
        raise RequestError(404, "voice_model_not_loaded", f"voice model {model.name!r} is not served here")
    if not model.speaks(body.language):
        raise RequestError(
            422, "language_not_supported", f"voice model {model.name!r} cannot speak {body.language!r}"
        )
    language = primary_subtag(body.language) if body.language else None
    return engine, language


async def _cloned_voice(
    app: web.Application, engine: VoiceEngine, url: str
) -> tuple[Any | None, str | None, str | None]:
    """Conditionals for the clip at `url`, or the reason the default voice is used.

    Returns:
        (conditionals or None, fallback reason or None, cache source or None)
    """
    model = engine.voice_model
    memo = app[MEMO]
    remembered = memo.get(model.name, url)
    if remembered is not None:
        kind, value = remembered
        if kind == "refused":
            return None, value, None
        if (conditionals := app[CACHE].peek(model.name, value)) is not None:
            return conditionals, None, "memory"
    try:
        clip = await app[FETCHER].fetch(url, min_seconds=model.min_reference_seconds)
    except ReferenceAudioRejected as exc:
        logger.warning(
            "reference audio refused, using the default voice",
            extra={"reason": exc.reason, "voice_model": model.name, "host": redacted_host(url)},
        )
        memo.put(model.name, url, "refused", exc.reason)
        return None, exc.reason, None
    try:
        conditionals, source = await app[CACHE].get_or_compute(
            model.name, clip.sha256, lambda: engine.compute_conditionals(clip.data)
        )
    except Exception:
        logger.exception(
            "voice conditionals failed, using the default voice",
            extra={"voice_model": model.name, "sha256": clip.sha256},
        )
        memo.put(model.name, url, "refused", REASON_CONDITIONALS_FAILED)
        return None, REASON_CONDITIONALS_FAILED, None
    memo.put(model.name, url, "ok", clip.sha256)
    return conditionals, None, source


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def speech(request: web.Request) -> web.StreamResponse:
    """POST /v1/speech: stream PCM as each chunk of the text is synthesised."""
    app = request.app
    settings = app[SETTINGS]
    try:
        body = SpeechRequest.model_validate_json(await request.read())
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in err["loc"]) for err in exc.errors()})
        raise RequestError(422, "invalid_request", f"invalid fields: {', '.join(fields) or 'body'}") from None
    try:
        loaded = app[ENGINES]
        engine, language = _resolve_model(body, loaded)
    except VoiceModelError as exc:
        raise RequestError(422, "invalid_voice_model", str(exc)) from None
    if len(body.text) > settings.max_text_chars:
        raise RequestError(413, "text_too_long", f"text is longer than {settings.max_text_chars} characters")
    chunks = split_text(
        body.text, first_chunk_chars=settings.first_chunk_chars, max_chunk_chars=settings.max_chunk_chars
    )
    if not chunks:
        raise RequestError(422, "empty_text", "text has nothing to speak")

    conditionals, fallback, cache_source = None, None, None
    if body.reference_audio_url:
        conditionals, fallback, cache_source = await _cloned_voice(app, engine, body.reference_audio_url)

    response = web.StreamResponse(
        headers={
            "Content-Type": "audio/pcm",
            SAMPLE_RATE_HEADER: str(engine.sample_rate),
            "X-Channels": str(NUM_CHANNELS),
            "X-Voice": "cloned" if conditionals is not None else "default",
        }
    )
    if fallback:
        response.headers[VOICE_FALLBACK_HEADER] = fallback
    if cache_source:
        response.headers["X-Voice-Cache"] = cache_source
    await response.prepare(request)

    started = time.perf_counter()
    spoken = 0
    for chunk in chunks:
        if _client_gone(request):
            break
        pcm = await engine.synthesize(chunk, conditionals=conditionals, voice=body.voice, language=language)
        try:
            await response.write(pcm)
        except ConnectionError:  # the client went away while we wrote
            break
        spoken += 1
    if spoken < len(chunks):
        logger.info(
            "client disconnected, synthesis stopped",
            extra={"voice_model": engine.name, "chunks_spoken": spoken, "chunks": len(chunks)},
        )
        return response
    await response.write_eof()
    logger.debug(
        "speech done",
        extra={"voice_model": engine.name, "chunks": len(chunks), "seconds": time.perf_counter() - started},
    )
    return response


async def voices(request: web.Request) -> web.Response:
    """GET /v1/voices: every named voice model, and whether this process serves it."""
    engines = request.app[ENGINES]
    return web.json_response(
        {
            "voices": [
                {
                    "name": model.name,
                    "engine": model.engine,
                    "languages": sorted(model.languages),
                    "min_reference_seconds": model.min_reference_seconds,
                    "loaded": model.name in engines,
                }
                for model in VOICE_MODELS.values()
            ]
        }
    )


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: loaded models, their queue depth and the conditionals cache counters."""
    engines = request.app[ENGINES]
    cache = request.app[CACHE]
    return web.json_response(
        {
            "status": "ok",
            "queue_depth": sum(e.queue_depth for e in engines.values()),
            "models": {
                name: {
                    "device": e.device,
                    "queue_depth": e.queue_depth,
                    "utterances": e.stats.utterances,
                    "conditionals_computed": e.stats.conditionals_computed,
                }
                for name, e in engines.items()
            },
            "conditionals_cache": {"entries": len(cache), **vars(cache.stats)},
        }
    )


def create_app(
    settings: ServiceSettings,
    *,
    engines: Mapping[str, VoiceEngine] | None = None,
    resolver: AbstractResolver | None = None,
) -> web.Application:
    """The voice service app.

    Args:
        settings: The service settings.
        engines: Already loaded engines (tests and the benchmark share one across apps);
            by default the app loads `settings.models` at start-up and closes them at shutdown.
        resolver: The DNS resolver behind the reference-audio SSRF guard (tests inject one).
    """
    app = web.Application(middlewares=[error_middleware], client_max_size=1024 * 1024)
    app[SETTINGS] = settings
    app[FETCHER] = ReferenceFetcher(limits_from(settings), resolver=resolver)
    app[MEMO] = ReferenceMemo(ttl=settings.reference_memo_seconds)

    async def engines_ctx(app: web.Application) -> AsyncIterator[None]:
        owned = engines is None
        loaded: dict[str, VoiceEngine] = {}
        if engines is None:
            for name in settings.models:
                loaded[name] = await asyncio.to_thread(VoiceEngine.load, name, settings)
        else:
            loaded = dict(engines)
        first = next(iter(loaded.values()))
        app[ENGINES] = loaded
        app[CACHE] = ConditionalsCache(
            capacity=settings.conditionals_cache_size,
            directory=settings.conditionals_dir if settings.conditionals_disk_cache else None,
            load=first.load_conditionals,
            save=VoiceEngine.save_conditionals,
        )
        yield
        await app[CACHE].aclose()
        if owned:
            for engine in loaded.values():
                engine.close()

    app.cleanup_ctx.append(engines_ctx)
    app.router.add_post(SPEECH_PATH, speech)
    app.router.add_get("/v1/voices", voices)
    app.router.add_get(HEALTH_PATH, healthz)
    return app
