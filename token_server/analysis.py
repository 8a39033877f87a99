"""Post-call analysis: a summary, extracted fields and success criteria, from an LLM.

When a session whose character version has an `analysis:` block ends, a run is queued
in the same transaction that ends it (`store._transition`); `POST
/v1/sessions/{id}/analysis` queues another. A background loop claims one due run at a
time with a lease that outlasts an attempt, so several token servers never run one
twice, and sends the transcript, the tool calls and the form answers to an
OpenAI-compatible chat-completions API, asking for JSON-schema structured output.
The reply is validated with pydantic; a failed or malformed one is retried with
backoff, and after the last attempt the run is stored as failed with its reason.

Fields the form captured during the call are kept as captured: where the analysis
finds another value, both are shown and the field is marked `disagrees`.

Storing a run's outcome brings forward the post-call webhook still waiting for it, or,
when that webhook already went, queues a `session.analyzed` delivery.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
import secrets
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import aiohttp
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, ValidationError, create_model

from contract import AnalysisConfig, Character
from contract.model import FormField

from .analysis_status import AnalysisStatus, AnalysisTrigger
from .character_versions import CharacterVersions
from .clock import utcnow
from .db import Database, session_analyses, session_events, webhook_deliveries
from .records import SessionRecords, analysis_run, form_state
from .settings import Settings
from .store import new_analysis

log = logging.getLogger("token_server.analysis")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# How much longer than one attempt's timeout a lease lasts: time to read the session
# before the request and to store the outcome after it.
LEASE_MARGIN_SECONDS = 30.0
# The most transcript, tool-call and form text one request carries; longer calls keep
# their start and end.
MAX_INPUT_CHARS = 200_000
MAX_ERROR = 500

_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_PHONE = r"^\+?[0-9 ()./-]{3,40}$"


class AnalysisFailed(Exception):
    """One attempt failed; `reason` is short, fixed text safe to store and show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:MAX_ERROR]


# --- The schema the reply must hold to --------------------------------------------------


def _field_schema(field: FormField) -> dict[str, Any]:
    kind: dict[str, Any]
    match field.type:
        case "number":
            kind = {"type": ["number", "null"]}
        case "integer":
            kind = {"type": ["integer", "null"]}
        case "boolean":
            kind = {"type": ["boolean", "null"]}
        case "choice":
            kind = {"type": ["string", "null"], "enum": [*(field.choices or []), None]}
        case "date":
            kind = {"type": ["string", "null"], "description": "YYYY-MM-DD"}
        case _:
            kind = {"type": ["string", "null"]}
    description = field.description or field.name
    if field.type in ("email", "phone", "date"):
        description += f" ({field.type})"
    return {**kind, "description": description + "; null if the call does not say"}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    # OpenAI's strict mode: every property required, no others allowed.
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(properties),
        "properties": properties,
    }


def reply_schema(config: AnalysisConfig) -> dict[str, Any]:
    """The JSON Schema of the reply, as `response_format.json_schema.schema` (strict)."""
    properties: dict[str, Any] = {}
    if config.summary.enabled:
        properties["summary"] = {"type": "string", "description": "a short summary of the call"}
    if config.fields:
        properties["fields"] = _object({f.name: _field_schema(f) for f in config.fields})
    if config.success:
        criterion = _object(
            {
                "answer": {"type": "boolean", "description": "yes (true) or no (false)"},
                "reason": {"type": "string", "description": "one short sentence"},
            }
        )
        properties["success"] = _object(
            {c.name: {**criterion, "description": c.question} for c in config.success}
        )
    return _object(properties)


class _Reply(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Verdict(_Reply):
    """One success criterion, answered."""

    answer: bool
    reason: Annotated[str, StringConstraints(max_length=1_000)]


def _field_type(field: FormField) -> Any:
    match field.type:
        case "number":
            return Annotated[float, Field(allow_inf_nan=False, strict=False)]
        case "integer":
            return int
        case "boolean":
            return bool
        case "choice":
            return Literal[tuple(field.choices or ())]  # type: ignore[misc]
        case "date":
            return Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")]
        case "email":
            return Annotated[str, StringConstraints(pattern=_EMAIL, max_length=320)]
        case "phone":
            return Annotated[str, StringConstraints(pattern=_PHONE)]
        case _:
            return Annotated[str, StringConstraints(max_length=5_000)]


def reply_model(config: AnalysisConfig) -> type[BaseModel]:
    """The pydantic model a reply is validated with (the same shape as `reply_schema`)."""
    parts: dict[str, Any] = {}
    if config.summary.enabled:
        parts["summary"] = (Annotated[str, StringConstraints(max_length=10_000)], ...)
    if config.fields:
        # Python names of our own, the character's names as aliases: a field may be called
        # `copy` or `schema` without shadowing a pydantic attribute.
        fields = create_model(  # type: ignore[call-overload]
            "AnalysedFields",
            __base__=_Reply,
            **{f"f{i}": (_field_type(f) | None, Field(alias=f.name)) for i, f in enumerate(config.fields)},
        )
        parts["fields"] = (fields, ...)
    if config.success:
        success = create_model(  # type: ignore[call-overload]
            "SuccessVerdicts",
            __base__=_Reply,
            **{f"s{i}": (Verdict, Field(alias=c.name)) for i, c in enumerate(config.success)},
        )
        parts["success"] = (success, ...)
    return create_model("AnalysisReply", __base__=_Reply, **parts)  # type: ignore[call-overload]


# --- What the LLM is told ---------------------------------------------------------------


def instructions(config: AnalysisConfig, character: Character) -> str:
    """The system message: what to work out, for which character."""
    lines = [
        f"You analyse a finished call between a user and {character.name}, a voice agent"
        + (f" ({character.description})" if character.description else "")
        + ".",
        "Answer only from what the call shows: the transcript, the tool calls and the form "
        "answers. Reply with JSON that holds to the schema.",
    ]
    if config.summary.enabled:
        lines.append("summary: " + (config.summary.instruction or "two or three sentences on what happened."))
    if config.fields:
        lines.append("fields: the value of each field as the call gives it, or null if it does not.")
    if config.success:
        lines.append("success: answer each question yes (true) or no (false), with a one-sentence reason:")
        lines += [f"- {c.name}: {c.question}" for c in config.success]
    return "\n".join(lines)


def call_record(transcript: list[dict], tool_calls: list[dict], form: dict[str, Any]) -> str:
    """The user message: the call as JSON, cut in the middle when it is very long."""
    turns = [{"role": t["role"], "text": t["text"]} for t in transcript]
    calls = [
        {k: c.get(k) for k in ("server", "tool", "arguments", "ok", "error") if c.get(k) is not None}
        for c in tool_calls
    ]
    answers = {f["name"]: f["value"] for f in form["fields"] if f["filled"]}
    body = {"transcript": turns, "tool_calls": calls, "form_answers": answers}
    text = json.dumps(body, ensure_ascii=False)
    while len(text) > MAX_INPUT_CHARS and len(turns) > 2:
        del turns[len(turns) // 2]
        body["transcript"] = [
            *turns[: len(turns) // 2],
            {"role": "note", "text": "(turns left out)"},
            *turns[len(turns) // 2 :],
        ]
        text = json.dumps(body, ensure_ascii=False)
    return text


# --- Captured against extracted ---------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9)
    if isinstance(a, str) and isinstance(b, str):
        fold = lambda s: re.sub(r"\s+", " ", s).strip().casefold()  # noqa: E731
        return fold(a) == fold(b)
    return a == b


def merge_fields(
    config: AnalysisConfig, extracted: dict[str, Any], form: dict[str, Any]
) -> list[dict[str, Any]]:
    """Each analysis field: the value kept (captured by the form, else extracted), both, and whether they disagree."""
    captured = {f["name"]: f["value"] for f in form["fields"] if f["filled"]}
    out = []
    for field in config.fields:
        found = extracted.get(field.name)
        was_captured = field.name in captured
        value = captured[field.name] if was_captured else found
        out.append(
            {
                "name": field.name,
                "type": field.type,
                "value": value,
                "source": "form" if was_captured else "analysis",
                "captured": captured.get(field.name),
                "extracted": found,
                "disagrees": was_captured and found is not None and not _same(captured[field.name], found),
            }
        )
    return out


# --- The LLM call -----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where a run's request goes and with which model."""

    base_url: str
    model: str
    api_key: SecretStr | None

    @classmethod
    def for_character(cls, settings: Settings, character: Character) -> Target:
        """The `ANALYSIS_LLM_*` settings where given, else the character's `llm`."""
        base = settings.analysis_llm_base_url or (
            str(character.llm.base_url) if character.llm.base_url else None
        )
        return cls(
            base_url=(base or DEFAULT_BASE_URL).rstrip("/"),
            model=settings.analysis_llm_model or character.llm.model,
            api_key=settings.analysis_llm_api_key,
        )


async def complete(
    http: aiohttp.ClientSession,
    target: Target,
    messages: list[dict[str, str]],
    schema: dict[str, Any],
    *,
    limit: aiohttp.ClientTimeout,
) -> tuple[str, dict[str, Any] | None]:
    """One non-streamed chat completion with structured output: its content and its usage.

    Raises:
        AnalysisFailed: no answer in time, a connection or HTTP error, or no content.
    """
    body = {
        "model": target.model,
        "messages": messages,
        "temperature": 0,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "call_analysis", "strict": True, "schema": schema},
        },
    }
    headers = {"Content-Type": "application/json"}
    if target.api_key is not None:
        headers["Authorization"] = f"Bearer {target.api_key.get_secret_value()}"
    try:
        async with http.post(
            target.base_url + "/chat/completions", json=body, headers=headers, timeout=limit
        ) as resp:
            if resp.status >= 300:
                raise AnalysisFailed(f"HTTP {resp.status} from the analysis LLM")
            reply = await resp.json(content_type=None)
    except TimeoutError:
        raise AnalysisFailed("the analysis LLM did not answer in time") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise AnalysisFailed(f"cannot reach the analysis LLM: {type(exc).__name__}") from None
    except ValueError:
        raise AnalysisFailed("the analysis LLM's answer is not JSON") from None
    try:
        choice = reply["choices"][0]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise AnalysisFailed("the analysis LLM's answer has no message") from None
    if not isinstance(content, str) or not content:
        refusal = choice.get("message", {}).get("refusal") if isinstance(choice, dict) else None
        raise AnalysisFailed("the analysis LLM refused" if refusal else "the analysis LLM's answer is empty")
    usage = reply.get("usage") if isinstance(reply.get("usage"), dict) else None
    return content, usage


def parse_reply(model: type[BaseModel], content: str) -> dict[str, Any]:
    """The reply validated against the run's model, as JSON.

    Raises:
        AnalysisFailed: not JSON, or not the schema (naming the first fields at fault).
    """
    try:
        return model.model_validate_json(content).model_dump(mode="json", by_alias=True)
    except ValidationError as exc:
        wrong = sorted({".".join(str(p) for p in e["loc"]) or "(reply)" for e in exc.errors()})
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise AnalysisFailed("the reply is not valid JSON") from None
        raise AnalysisFailed("the reply breaks the schema at: " + ", ".join(wrong[:10])) from None


def usage_of(usage: dict[str, Any] | None) -> dict[str, int]:
    """The analysis LLM's token counts, summed into a run's usage."""
    usage = usage or {}
    return {
        k: int(usage[k])
        for k in ("prompt_tokens", "completion_tokens", "total_tokens")
        if isinstance(usage.get(k), int)
    }


def add_usage(a: dict[str, int] | None, b: dict[str, int]) -> dict[str, int]:
    """Two usages added up."""
    out = dict(a or {})
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return out


# --- The runs ---------------------------------------------------------------------------


class PostCallAnalysis:
    """Runs queued analyses and queues re-runs."""

    def __init__(
        self,
        db: Database,
        http: aiohttp.ClientSession,
        settings: Settings,
        records: SessionRecords,
        versions: CharacterVersions,
    ) -> None:
        """Read sessions through `records`, definitions through `versions`; call the LLM with `http`."""
        self._db = db
        self._http = http
        self._settings = settings
        self._records = records
        self._versions = versions
        self._timeout = aiohttp.ClientTimeout(total=settings.analysis_llm_timeout_seconds)
        self._lease = dt.timedelta(seconds=settings.analysis_llm_timeout_seconds + LEASE_MARGIN_SECONDS)

    async def queue(self, session_id: str, version: str) -> dict[str, Any]:
        """Queue a re-run of `session_id` with character version `version`; returns the run."""
        row = new_analysis(session_id, version, trigger=AnalysisTrigger.RERUN, now=utcnow())
        await self._db.write(_insert_run, row)
        return analysis_run(_Queued(row)).model_dump(mode="json")

    async def run_due(self, limit: int = 10) -> int:
        """Run up to `limit` due analyses, one at a time; returns how many attempts were made."""
        for attempted in range(limit):
            now = utcnow()
            run = await self._db.write(_claim_next, now, now + self._lease)
            if run is None:
                return attempted
            await self._attempt(run)
        return limit

    async def _attempt(self, run: sa.Row) -> None:
        model_name: str | None = None
        usage: dict[str, int] = {}
        try:
            found = await self._versions.definition(run.character_version)
            if found is None:
                raise AnalysisFailed("the character version is not stored")
            _, character = found
            if character.analysis is None:
                raise AnalysisFailed("this character version has no analysis")
            config = character.analysis
            target = Target.for_character(self._settings, character)
            model_name = target.model
            session_row = await self._records.get(run.session_id)
            if session_row is None:
                raise AnalysisFailed("the session no longer exists")
            form = form_state(
                dict(session_row.config), await self._records.form_updates(run.session_id)
            ).model_dump(mode="json")
            messages = [
                {"role": "system", "content": instructions(config, character)},
                {
                    "role": "user",
                    "content": call_record(
                        await self._records.transcript(run.session_id),
                        await self._tool_calls(run.session_id),
                        form,
                    ),
                },
            ]
            content, raw_usage = await complete(
                self._http, target, messages, reply_schema(config), limit=self._timeout
            )
            usage = usage_of(raw_usage)
            reply = parse_reply(reply_model(config), content)
        except AnalysisFailed as exc:
            await self._record(run, model_name, usage, error=exc.reason)
            return
        except Exception:
            log.exception("analysis run failed unexpectedly", extra={"analysis_id": run.id})
            await self._record(run, model_name, usage, error="internal error")
            return
        result: dict[str, Any] = {}
        if "summary" in reply:
            result["summary"] = reply["summary"]
        if config.fields:
            result["fields"] = merge_fields(config, reply["fields"], form)
            result["disagreements"] = [f["name"] for f in result["fields"] if f["disagrees"]]
        if config.success:
            result["success"] = [
                {"name": c.name, "question": c.question, **reply["success"][c.name]} for c in config.success
            ]
            result["succeeded"] = all(v["answer"] for v in result["success"])
        await self._record(run, model_name, usage, result=result)

    async def _tool_calls(self, session_id: str) -> list[dict[str, Any]]:
        query = (
            sa.select(session_events.c.data)
            .where(session_events.c.session_id == session_id, session_events.c.type == "tool_call")
            .order_by(session_events.c.seq)
            .limit(500)
        )
        async with self._db.connect() as conn:
            return [r.data for r in await conn.execute(query)]

    async def _record(
        self,
        run: sa.Row,
        model: str | None,
        usage: dict[str, int],
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        now = utcnow()
        attempts = run.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "locked_until": None,
            "model": model,
            "usage": add_usage(run.usage, usage) if usage or run.usage else None,
        }
        if error is None:
            values |= {"status": AnalysisStatus.SUCCEEDED, "result": result, "error": None}
        elif attempts < self._settings.analysis_max_attempts:
            delay = self._settings.analysis_retry_base_seconds * 2 ** (attempts - 1)
            values |= {"error": error, "next_attempt_at": now + dt.timedelta(seconds=delay)}
        else:
            values |= {"status": AnalysisStatus.FAILED, "error": error, "next_attempt_at": None}
        if "status" in values:
            values["finished_at"] = now
        stored = await self._db.write(_store_attempt, run, values, now)
        log.info(
            "analysis attempt",
            extra={
                "analysis_id": run.id,
                "session_id": run.session_id,
                "outcome": values.get("status", "retry"),
                "error": error,
                "stored": stored,
            },
        )


class _Queued:
    """A freshly queued run's values, read like a row by `analysis_run`."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(
            {"model": None, "error": None, "result": None, "usage": None, "finished_at": None, **values}
        )


def _insert_run(conn: sa.Connection, row: dict[str, Any]) -> None:
    conn.execute(session_analyses.insert().values(**row))


def _claim_next(conn: sa.Connection, now: dt.datetime, until: dt.datetime) -> sa.Row | None:
    """Lease the longest-due free run, or return None if there is none."""
    free = sa.or_(session_analyses.c.locked_until.is_(None), session_analyses.c.locked_until < now)
    due = (
        sa.select(session_analyses)
        .where(
            session_analyses.c.status == AnalysisStatus.PENDING,
            session_analyses.c.next_attempt_at <= now,
            free,
        )
        .order_by(session_analyses.c.next_attempt_at)
        .limit(10)
    )
    # Another token server may lease a candidate between the SELECT and the UPDATE
    # (PostgreSQL); then the next candidate is tried.
    for row in conn.execute(due).all():
        lease_it = session_analyses.update().where(session_analyses.c.id == row.id, free)
        if conn.execute(lease_it.values(locked_until=until)).rowcount == 1:
            return conn.execute(sa.select(session_analyses).where(session_analyses.c.id == row.id)).first()
    return None


def _store_attempt(conn: sa.Connection, run: sa.Row, values: dict[str, Any], now: dt.datetime) -> bool:
    """Store an attempt's outcome if this server's lease still holds; returns whether it did.

    A finished run (succeeded or failed) brings forward the session's post-call webhook
    while it still waits unsent, or else queues a `session.analyzed` delivery.
    """
    held = conn.execute(
        session_analyses.update()
        .where(
            session_analyses.c.id == run.id,
            session_analyses.c.status == AnalysisStatus.PENDING,
            session_analyses.c.locked_until == run.locked_until,
        )
        .values(**values)
    ).rowcount
    if held != 1 or "status" not in values:
        return held == 1
    ended = webhook_deliveries.c.event == "session.ended"
    of_session = webhook_deliveries.c.session_id == run.session_id
    unsent = sa.and_(
        webhook_deliveries.c.status == "pending",
        webhook_deliveries.c.attempts == 0,
        sa.or_(webhook_deliveries.c.locked_until.is_(None), webhook_deliveries.c.locked_until < now),
    )
    brought = conn.execute(
        webhook_deliveries.update().where(of_session, ended, unsent).values(next_attempt_at=now)
    ).rowcount
    if brought:
        return True
    first = conn.execute(
        sa.select(webhook_deliveries.c.url).where(of_session, ended).order_by(webhook_deliveries.c.created_at)
    ).first()
    if first is not None:
        conn.execute(
            webhook_deliveries.insert().values(
                id="whd_" + secrets.token_hex(12),
                session_id=run.session_id,
                url=first.url,
                event="session.analyzed",
                status="pending",
                attempts=0,
                created_at=now,
                next_attempt_at=now,
            )
        )
    return True
