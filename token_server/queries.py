"""Query parameters, path ids and cursors of the GET endpoints, each read by a pydantic model.

A query string is text the client chose: its digits may be Arabic-Indic or full-width,
its number longer than any column holds, its cursor base64 of anything at all. Every
parameter is read here, by one model per endpoint, before anything reaches the
database: numbers are ASCII digits within their range, names and types are the
characters they can be, a cursor is short base64url of strict JSON of the one shape
this server writes. Every problem is a 422 `validation_error` naming the parameter, and
a parameter that is unknown or given twice is one too. An empty one is not valid either:
leave a parameter out to leave it out.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from typing import Annotated, Any, Literal, TypeVar, get_args

from aiohttp import web
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from contract.validation import error_message

from . import strict_json
from .clock import as_utc
from .errors import NotFound, ValidationFailed
from .session_status import SessionStatus

DEFAULT_PAGE = 100
MAX_PAGE = 1000
# Event sequence numbers are 64-bit integers in both databases.
MAX_SEQ = 2**63 - 1
# Our own cursors are under 110 characters; anything much longer was not written by us.
MAX_CURSOR = 256
MAX_TYPES = 32

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
SESSION_ID_PATTERN = r"^ses_[0-9a-f]{32}$"
EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
_SESSION_ID = re.compile(SESSION_ID_PATTERN)
_EVENT_TYPE = re.compile(EVENT_TYPE_PATTERN)
_ASCII_NUMBER = re.compile(r"^[0-9]{1,19}$")
# RFC 3339, as OpenAPI's `date-time` means it: ASCII digits, a `T`, and an offset.
_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)

# The statuses as the API documents them: a Literal, so the OpenAPI document lists them inline.
Status = Literal["pending", "active", "ended", "failed"]
assert set(get_args(Status)) == set(SessionStatus), "Status must name every SessionStatus"


def _ascii_whole_number(value: Any) -> Any:
    # `str.isdigit` and `int()` take "١٢", "１２" and "²"; a query parameter takes 0-9 only.
    if isinstance(value, str) and not _ASCII_NUMBER.match(value):
        raise ValueError("must be a whole number written in the digits 0-9")
    return value


def _rfc3339(value: Any) -> Any:
    # pydantic alone also reads "0.5" as a Unix time, "2026-01-31" as midnight, and a time
    # without an offset as local to nobody.
    if isinstance(value, str) and not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 time with its offset, such as 2026-01-31T12:00:00Z")
    return value


PageSize = Annotated[int, Field(ge=1, le=MAX_PAGE), BeforeValidator(_ascii_whole_number)]
Cursor = Annotated[str, Field(min_length=1, max_length=MAX_CURSOR, pattern=r"^[A-Za-z0-9_-]+={0,2}$")]


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LogsQuery(_Query):
    """`GET /v1/sessions/{session_id}/logs`: a page of events, oldest first."""

    limit: PageSize = Field(DEFAULT_PAGE, description=f"events per page, 1 to {MAX_PAGE}")
    cursor: Cursor | None = Field(None, description="the `next_cursor` of the previous page")
    types: str | None = Field(
        None,
        max_length=MAX_TYPES * 65,
        pattern=r"^[a-z0-9_,]*$",
        description="comma-separated event types to keep, such as `transcript,tool_call`",
    )

    @field_validator("types")
    @classmethod
    def _types(cls, value: str | None) -> str | None:
        names = [t for t in (value or "").split(",") if t]
        if len(names) > MAX_TYPES:
            raise ValueError(f"at most {MAX_TYPES} event types")
        if any(not _EVENT_TYPE.match(name) for name in names):
            raise ValueError("event type names are lowercase letters, digits and underscores")
        return value

    @property
    def type_names(self) -> list[str] | None:
        """The event types asked for, or None for all."""
        return [t for t in (self.types or "").split(",") if t] or None


class SessionListQuery(_Query):
    """`GET /v1/sessions`: a page of sessions, newest first."""

    character: str | None = Field(None, pattern=SLUG_PATTERN, description="only this character's sessions")
    status: Status | None = Field(None, description="only sessions in this status")
    since: Annotated[dt.datetime, BeforeValidator(_rfc3339)] | None = Field(
        None, description="only sessions created at or after this time (RFC 3339, with its offset)"
    )
    limit: PageSize = Field(DEFAULT_PAGE, description=f"sessions per page, 1 to {MAX_PAGE}")
    cursor: Cursor | None = Field(None, description="the `next_cursor` of the previous page")


QueryModel = TypeVar("QueryModel", bound=_Query)


def _bad(problems: list[dict[str, str]]) -> ValidationFailed:
    if len(problems) == 1:
        message = f"The query parameter {problems[0]['field']!r} is not valid: {problems[0]['message']}."
    else:
        message = f"Some query parameters are not valid: {', '.join(p['field'] for p in problems)}."
    return ValidationFailed(message, details=problems)


def read_query(request: web.Request, model: type[QueryModel]) -> QueryModel:
    """The request's query string as `model`.

    Raises:
        ValidationFailed: a parameter is unknown, repeated or not valid; each is named.
    """
    values: dict[str, str] = {}
    problems: list[dict[str, str]] = []
    seen: set[str] = set()
    for name, value in request.query.items():
        shown = name[:64]
        if name in seen:
            problems.append({"field": shown, "type": "repeated", "message": "is given more than once"})
        seen.add(name)
        values[name] = value
    try:
        query = model.model_validate(values)
    except ValidationError as exc:
        for err in exc.errors(include_url=False, include_input=False, include_context=False):
            field = str(err["loc"][0])[:64] if err["loc"] else "(query)"
            message = (
                "is not a parameter of this endpoint"
                if err["type"] == "extra_forbidden"
                else error_message(err)
            )
            problems.append({"field": field, "type": err["type"], "message": message})
    if problems:
        raise _bad(problems)
    return query


def session_id(request: web.Request) -> str:
    """The `{session_id}` of the path; one that cannot be a session id is a 404 at once."""
    value = request.match_info["session_id"]
    if not _SESSION_ID.match(value):
        raise NotFound("No such session.", code="session_not_found")
    return value


# --- cursors: base64url of strict JSON, written and read only here ------------------------


def encode_cursor(value: object) -> str:
    """`value` as a cursor a client passes back unchanged."""
    return base64.urlsafe_b64encode(strict_json.dumps(value).encode()).decode().rstrip("=")


_LOGS_CURSOR = TypeAdapter(Annotated[int, Field(strict=True, ge=0, le=MAX_SEQ)])
_LIST_CURSOR = TypeAdapter(
    tuple[dt.datetime, Annotated[str, Field(pattern=SESSION_ID_PATTERN)]], config=ConfigDict(strict=True)
)


def _decode(cursor: str, adapter: TypeAdapter) -> Any:
    refused = ValidationFailed(
        "The query parameter 'cursor' is not valid: use the next_cursor of a previous page.",
        code="invalid_cursor",
        details=[
            {"field": "cursor", "type": "invalid_cursor", "message": "use the next_cursor of a previous page"}
        ],
    )
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        strict_json.loads(raw)  # the rules every JSON the server reads meets
        return adapter.validate_json(raw)
    except (binascii.Error, ValueError, RecursionError):  # BodyRefused and ValidationError are ValueErrors
        raise refused from None


def logs_after(query: LogsQuery) -> int:
    """The sequence number the logs page starts after."""
    return 0 if query.cursor is None else _decode(query.cursor, _LOGS_CURSOR)


def list_before(query: SessionListQuery) -> tuple[dt.datetime, str] | None:
    """The (created_at, id) the session list page continues before."""
    if query.cursor is None:
        return None
    created, sid = _decode(query.cursor, _LIST_CURSOR)
    return as_utc(created), sid


def list_cursor(created_at: dt.datetime, sid: str) -> str:
    """The cursor for the page after the session (`created_at`, `sid`)."""
    return encode_cursor([as_utc(created_at).isoformat(), sid])
