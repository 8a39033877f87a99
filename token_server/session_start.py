"""Starting a session.

From a validated request to a recorded session, a LiveKit room carrying its
configuration, and the browser's join token.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from contract import Character, DispatchConfig, SessionConfig
from contract.templates import MissingVariables, RenderedTooLong, lookup_metadata, render
from contract.voice_models import VoiceModelError, resolve_voice_model

from .access import Caller, Decided, decide_fields
from .errors import Forbidden, LimitReached, ValidationFailed, parse_body
from .livekit import LiveKitRooms
from .schemas import StartSessionRequest, StartSessionResponse
from .session_status import LIVE_STATUSES, SessionStatus
from .settings import Settings
from .store import GrantUsed, NewSession, Replay, SessionStore, SlotsFull, UsedGrant

log = logging.getLogger("token_server.sessions")

MAX_IDEMPOTENCY_KEY = 255
# A filled-in prompt or greeting may grow past its template's limit only this far.
MAX_RENDERED_PROMPT = 40_000
MAX_RENDERED_GREETING = 4_000


def parse_request(raw: Any) -> StartSessionRequest:
    """Validate the body of `POST /v1/sessions`.

    Raises:
        ValidationFailed: naming every bad field.
    """
    return parse_body(StartSessionRequest, raw)


def _render_problem(field: str, exc: ValueError, unverified: dict[str, Any]) -> dict[str, Any]:
    if isinstance(exc, RenderedTooLong):
        return {"field": field, "type": "too_long", "message": str(exc)}
    assert isinstance(exc, MissingVariables)
    message = f"no value in metadata for: {', '.join(exc.names)}"
    from_page = [n for n in exc.names if lookup_metadata(unverified, n) is not None]
    if from_page:
        message += (
            f" ({', '.join(from_page)} came from the page, which is unverified: send it from your"
            " server or in a session grant)"
        )
    return {"field": field, "type": "missing_template_variables", "message": message, "missing": exc.names}


def build_session_config(session_id: str, character: Character, decided: Decided) -> SessionConfig:
    """The effective configuration: the character's defaults with the caller's overrides.

    The prompt is filled from verified metadata only, so nothing a page sends reaches
    it unlabelled; the greeting, which the user hears, from both (verified first).

    Raises:
        ValidationFailed: the voice model cannot speak the language, or a placeholder
            has no value; every problem is listed.
    """
    overrides = decided.overrides
    problems: list[dict[str, Any]] = []
    mode = overrides.get("mode") or character.modes[0]
    if mode not in character.modes:
        problems.append(
            {
                "field": "mode",
                "type": "mode_not_offered",
                "message": f"this character does not offer {mode} sessions, only: {', '.join(character.modes)}",
            }
        )
    language = overrides.get("language") or character.language
    voice_model = character.voice_model
    try:
        voice_model = resolve_voice_model(
            requested=overrides.get("voice_model"), default=character.voice_model, language=language
        ).name
    except VoiceModelError as exc:
        field = "voice_model" if overrides.get("voice_model") else "language"
        problems.append({"field": field, "type": "voice_model", "message": str(exc)})

    verified, unverified = decided.metadata, decided.unverified_metadata
    greeting = overrides.get("greeting")
    rendered: dict[str, str] = {}
    for field, template, values, limit in (
        (
            "system_prompt",
            overrides.get("system_prompt") or character.system_prompt,
            verified,
            MAX_RENDERED_PROMPT,
        ),
        (
            "greeting",
            greeting if greeting is not None else character.greeting,
            {**unverified, **verified},
            MAX_RENDERED_GREETING,
        ),
    ):
        try:
            rendered[field] = render(template, values, max_length=limit)
        except (MissingVariables, RenderedTooLong) as exc:
            problems.append(_render_problem(field, exc, unverified))
    if problems:
        names = ", ".join(p["field"] for p in problems)
        raise ValidationFailed(f"Some fields are not valid: {names}.", details=problems)

    reference = overrides.get("reference_audio_url") or (
        str(character.reference_audio_url) if character.reference_audio_url else None
    )
    return SessionConfig.for_character(
        session_id,
        character,
        language=language,
        system_prompt=rendered["system_prompt"],
        greeting=rendered["greeting"],
        voice_model=voice_model,
        reference_audio_url=reference,
        metadata=verified,
        unverified_metadata=unverified,
        mode=mode,
    )


def idempotency_key(value: str | None) -> str | None:
    """The `Idempotency-Key` header, checked.

    Raises:
        ValidationFailed: too long or not printable ASCII.
    """
    if value is None:
        return None
    if not value or len(value) > MAX_IDEMPOTENCY_KEY or not value.isascii() or not value.isprintable():
        raise ValidationFailed(
            "The Idempotency-Key header must be 1 to 255 printable ASCII characters.",
            details=[
                {
                    "field": "Idempotency-Key",
                    "type": "header",
                    "message": "1 to 255 printable ASCII characters",
                }
            ],
        )
    return value


@dataclass(frozen=True)
class StartContext:
    """Everything a session start needs."""

    settings: Settings
    store: SessionStore
    rooms: LiveKitRooms


def _request_hash(secret: str, raw: dict[str, Any], *, character: str, caller: Caller) -> str:
    # What makes two requests "the same": the body, the character, and who sent it (the
    # Origin and which API key), so a key replayed from another site or by another key
    # holder is refused rather than handed the first caller's session. Keyed, so the
    # stored fingerprint reveals nothing about secret header values.
    scope = {"character": character, "origin": caller.origin, "api_key": caller.api_key_id}
    canonical = json.dumps(
        {"request": raw, "scope": scope}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def _response(
    ctx: StartContext, *, session_id: str, room_name: str, identity: str, config: SessionConfig
) -> dict:
    token = ctx.rooms.participant_token(room_name=room_name, identity=identity)
    url = ctx.settings.livekit_url
    return StartSessionResponse(
        token=token,
        livekit_url=url,
        room_name=room_name,
        participant_identity=identity,
        session_id=session_id,
        expires_in_seconds=ctx.settings.token_ttl_seconds,
        character_slug=config.character,
        mode=config.mode,
        system_prompt=config.system_prompt,
        greeting=config.greeting,
        server_url=url,
        participant_token=token,
    ).model_dump()


async def start_session(
    ctx: StartContext,
    *,
    character: Character,
    body: StartSessionRequest,
    raw: dict[str, Any],
    caller: Caller,
    key: str | None,
    version: str | None = None,
) -> tuple[dict, bool]:
    """Record the session, create its room with the dispatch, and sign the join token.

    `version` is the character version the session records (`character_versions.py`).

    Returns the response body and whether a new session was created (False for an
    idempotent replay).

    Raises:
        ValidationFailed, LimitReached, UpstreamFailed.
    """
    settings = ctx.settings
    origin = caller.origin
    session_id = "ses_" + secrets.token_hex(16)
    room_name = f"oshara-{character.slug}-{secrets.token_hex(8)}"
    identity = "user-" + secrets.token_hex(8)
    decided = decide_fields(caller, character, body)
    config = build_session_config(session_id, character, decided)
    dispatch = DispatchConfig.for_session(session_id, character, decided.overrides.get("mcp_headers") or {})
    new = NewSession(
        id=session_id,
        character=character.slug,
        room_name=room_name,
        participant_identity=identity,
        origin=origin,
        origin_url=decided.overrides.get("origin_url"),
        config=config.model_dump(mode="json"),
        join_timeout_seconds=character.join_timeout_seconds,
        max_duration_seconds=character.max_duration_seconds,
        agent_join_timeout_seconds=settings.agent_join_timeout_seconds,
        idempotency_key=key,
        character_version=version,
        grant=(
            UsedGrant(jti=caller.grant.jti, forget_after=caller.grant.forget_after)
            if caller.grant is not None
            else None
        ),
        request_hash=(
            _request_hash(
                settings.livekit_api_secret.get_secret_value(), raw, character=character.slug, caller=caller
            )
            if key
            else None
        ),
    )
    try:
        await ctx.store.reserve(
            new,
            limit=character.max_concurrent_sessions,
            global_limit=settings.global_max_concurrent_sessions,
            idempotency_window=dt.timedelta(seconds=settings.idempotency_window_seconds),
        )
    except SlotsFull as full:
        wait = settings.retry_after_seconds
        scope = "global" if full.scope == "*" else "character"
        raise LimitReached(
            f"All {full.limit} sessions for this {'service' if scope == 'global' else 'character'} are in use. "
            f"Try again in {wait} seconds.",
            details={"limit": full.limit, "scope": scope, "retry_after_seconds": wait},
            headers={"Retry-After": str(wait)},
        ) from None
    except GrantUsed:
        raise Forbidden(
            "This grant was already used: a grant starts one session. Ask the site for a new one.",
            code="grant_used",
        ) from None
    except Replay as replay:
        if not replay.same_request:
            raise ValidationFailed(
                "This Idempotency-Key was used for a different request.",
                code="idempotency_key_reused",
                details=[
                    {"field": "Idempotency-Key", "type": "reused", "message": "used for another request"}
                ],
            ) from None
        row = replay.row
        body_out = _response(
            ctx,
            session_id=row.id,
            room_name=row.room_name,
            identity=row.participant_identity,
            config=SessionConfig.model_validate(row.config),
        )
        return body_out, False

    try:
        await ctx.rooms.create_room(
            room_name=room_name, room_metadata=config.to_json(), dispatch_metadata=dispatch.to_json()
        )
    except BaseException:
        # Free the slot whatever went wrong (LiveKit, or the request being cancelled).
        await asyncio.shield(
            ctx.store.transition(
                session_id, SessionStatus.FAILED, "livekit_unavailable", from_statuses=LIVE_STATUSES
            )
        )
        raise
    log.info(
        "session started",
        extra={"session_id": session_id, "character": character.slug, "room": room_name, "origin": origin},
    )
    return _response(ctx, session_id=session_id, room_name=room_name, identity=identity, config=config), True
