"""The API as an OpenAPI 3.1 document, built from the pydantic models, for `GET /openapi.json`.

Each operation is a line in `OPERATIONS`: its request body, query and path parameters
and every answer it documents, each a model from `schemas.py`, `queries.py`,
`responses.py` or `characters`. Their JSON Schemas (draft 2020-12, which OpenAPI 3.1
uses) go into `components.schemas`. The document is made from models only, never from
settings, so it holds no key, secret, prompt or character.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from contract.events import EventBatch

from . import responses as r
from .queries import SESSION_ID_PATTERN, SLUG_PATTERN, LogsQuery, SessionListQuery
from .schemas import AnalysisRequest, StartSessionRequest, StartSessionResponse
from .strict_json import json_response

REF = "#/components/schemas/{model}"

ERRORS = {
    400: "Not JSON, strict JSON refused (`non_finite_number`, `duplicate_key`), a header that is not "
    "UTF-8 (`invalid_header`), or a request the HTTP parser refused (`bad_http_request`)",
    401: "No API key, or a wrong key, token or signature",
    403: "The Origin may not do this",
    404: "No such session or character",
    409: "The session ended too long ago, or (analysis) is still live",
    413: "The body is over its limit",
    415: "The body is not `application/json`",
    422: "Fields or query parameters that fail validation; `details` names each",
    429: "A concurrency limit is reached; see `Retry-After`",
    502: "LiveKit's API failed; nothing was kept",
    503: "The database does not answer",
}


@dataclass(frozen=True)
class Answer:
    """A documented answer that is not JSON, or JSON of no model."""

    description: str
    media_type: str = "application/json"
    schema: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    """One route: what it takes and what it may answer."""

    method: Literal["get", "post"]
    path: str
    summary: str
    ok: dict[int, type[BaseModel] | Answer]
    errors: tuple[int, ...] = ()
    api_key: Literal["required", "optional", "none"] = "none"
    query: type[BaseModel] | None = None
    body: type[BaseModel] | Answer | None = None
    headers: tuple[dict[str, Any], ...] = ()
    tags: tuple[str, ...] = ()


_SESSION_ID = {
    "name": "session_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": SESSION_ID_PATTERN},
    "description": "a `session_id` as `POST /v1/sessions` answered it",
}
_SLUG = {
    "name": "slug",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": SLUG_PATTERN},
    "description": "a character's slug, as `GET /v1/characters` lists it",
}
_ORIGIN = {
    "name": "Origin",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "sent by browsers; must match the character's `allowed_origins` unless an API key is sent",
}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "a repeat within 10 minutes answers 200 with the same session",
}
_WORKER_TOKEN = {
    "name": "Authorization",
    "in": "header",
    "required": True,
    "schema": {"type": "string"},
    "description": "`Bearer <JWT>` the worker signs with the LiveKit API secret, for this session",
}
_LIVEKIT_SIGNATURE = {
    "name": "Authorization",
    "in": "header",
    "required": True,
    "schema": {"type": "string"},
    "description": "LiveKit's JWT carrying the body's SHA-256",
}

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "post",
        "/v1/sessions",
        "Start a session with a character",
        ok={201: StartSessionResponse, 200: StartSessionResponse},
        errors=(400, 401, 403, 404, 413, 415, 422, 429, 502),
        api_key="optional",
        body=StartSessionRequest,
        headers=(_ORIGIN, _IDEMPOTENCY_KEY),
        tags=("sessions",),
    ),
    Operation(
        "get",
        "/v1/sessions",
        "A page of sessions, newest first",
        ok={200: r.SessionList},
        errors=(400, 401, 422),
        api_key="required",
        query=SessionListQuery,
        tags=("records",),
    ),
    Operation(
        "get",
        "/v1/sessions/{session_id}",
        "One session: status, history, configuration, usage, form, webhooks",
        ok={200: r.SessionRecord},
        errors=(400, 401, 404),
        api_key="required",
        tags=("records",),
    ),
    Operation(
        "get",
        "/v1/sessions/{session_id}/logs",
        "A page of a session's events, oldest first",
        ok={200: r.SessionLogs},
        errors=(400, 401, 404, 422),
        api_key="required",
        query=LogsQuery,
        tags=("records",),
    ),
    Operation(
        "get",
        "/v1/sessions/{session_id}/form",
        "A session's form answers",
        ok={200: r.FormState},
        errors=(400, 401, 404),
        api_key="required",
        tags=("records",),
    ),
    Operation(
        "get",
        "/v1/sessions/{session_id}/analysis",
        "A session's post-call analysis: the latest result and every run",
        ok={200: r.SessionAnalysis},
        errors=(400, 401, 404),
        api_key="required",
        tags=("records",),
    ),
    Operation(
        "post",
        "/v1/sessions/{session_id}/analysis",
        "Run a session's post-call analysis again (by default with the version that handled the call)",
        ok={202: r.AnalysisQueued},
        errors=(400, 401, 404, 409, 413, 415, 422),
        api_key="required",
        body=AnalysisRequest,
        tags=("records",),
    ),
    Operation(
        "post",
        "/internal/v1/sessions/{session_id}/events",
        "The agent worker's reports for a session",
        ok={200: r.EventsAccepted},
        errors=(400, 401, 404, 409, 413, 415, 422),
        body=EventBatch,
        headers=(_WORKER_TOKEN,),
        tags=("ingest",),
    ),
    Operation(
        "post",
        "/livekit/webhook",
        "LiveKit's room and participant events",
        ok={200: r.WebhookReceived},
        errors=(400, 401, 413),
        body=Answer(
            "a LiveKit WebhookEvent as protobuf JSON", "application/webhook+json", {"type": "object"}
        ),
        headers=(_LIVEKIT_SIGNATURE,),
        tags=("ingest",),
    ),
    Operation(
        "get",
        "/v1/characters",
        "The active characters, without prompts or secrets",
        ok={200: r.CharacterList},
        errors=(400,),
        tags=("characters",),
    ),
    Operation(
        "post",
        "/v1/characters/reload",
        "Load the character files again; a bad file is refused and the loaded set stays live",
        ok={200: r.CharactersReloaded},
        errors=(400, 401, 422),
        api_key="required",
        tags=("characters",),
    ),
    Operation(
        "get",
        "/v1/characters/{slug}/versions",
        "Every version of a character, newest first, with when each was first and last used",
        ok={200: r.CharacterVersions},
        errors=(400, 401, 404),
        api_key="required",
        tags=("characters",),
    ),
    Operation(
        "get",
        "/healthz",
        "Up, and the database answers",
        ok={200: r.Health, 503: r.Health},
        errors=(400,),
        tags=("service",),
    ),
    Operation(
        "get",
        "/openapi.json",
        "This document",
        ok={200: Answer("the OpenAPI 3.1 document", schema={"type": "object"})},
        errors=(400,),
        tags=("service",),
    ),
    Operation(
        "get",
        "/widget.js",
        "The embeddable widget's loader, the URL pages embed (brotli or gzip as accepted)",
        ok={200: Answer("the widget's loader", "text/javascript", {"type": "string"})},
        errors=(400, 404),
        tags=("pages",),
    ),
    Operation(
        "get",
        "/widget/{filename}",
        "The rest of the widget (livekit-client and the call), named by content hash",
        ok={200: Answer("a file of the widget's build", "text/javascript", {"type": "string"})},
        errors=(400, 404),
        tags=("pages",),
    ),
    Operation(
        "get",
        "/",
        "The demo page",
        ok={200: Answer("the demo page", "text/html", {"type": "string"})},
        errors=(400, 404),
        tags=("pages",),
    ),
    Operation(
        "get",
        "/static/demo/{filename}",
        "The demo page's script and styles",
        ok={200: Answer("a file", "*/*", {})},
        errors=(400, 404),
        tags=("pages",),
    ),
)


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    # A query parameter is never null: keep the other branch of an `X | None`.
    params = []
    for name, schema in model.model_json_schema(ref_template=REF)["properties"].items():
        schema = dict(schema)
        description = schema.pop("description", None)
        schema.pop("title", None)
        if "anyOf" in schema:
            branches = [b for b in schema.pop("anyOf") if b != {"type": "null"}]
            schema = {**branches[0], **schema} if len(branches) == 1 else {"anyOf": branches, **schema}
        if schema.get("default", 0) is None:
            del schema["default"]
        params.append(
            {"name": name, "in": "query", "required": False, "schema": schema, "description": description}
        )
    return params


def _content(kind: type[BaseModel] | Answer) -> dict[str, Any]:
    if isinstance(kind, Answer):
        return {kind.media_type: {"schema": kind.schema}}
    return {"application/json": {"schema": {"$ref": REF.format(model=kind.__name__)}}}


def _operation(op: Operation) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = []
    if "{session_id}" in op.path:
        parameters.append(_SESSION_ID)
    if "{slug}" in op.path:
        parameters.append(_SLUG)
    if "{filename}" in op.path:
        parameters.append({"name": "filename", "in": "path", "required": True, "schema": {"type": "string"}})
    parameters += op.headers
    if op.query is not None:
        parameters += _query_parameters(op.query)
    responses: dict[str, Any] = {}
    for status, kind in sorted(op.ok.items()):
        description = kind.description if isinstance(kind, Answer) else (kind.__doc__ or "").split("\n")[0]
        if op.method == "post" and status == 200 and op.path == "/v1/sessions":
            description = "An idempotent replay: the same session, with a fresh token"
        responses[str(status)] = {"description": description, "content": _content(kind)}
    for status in op.errors:
        responses[str(status)] = {"description": ERRORS[status], "content": _content(r.ErrorResponse)}
    out: dict[str, Any] = {
        "operationId": f"{op.method}_{op.path.strip('/').replace('/', '_').replace('{', '').replace('}', '') or 'root'}",
        "summary": op.summary,
        "tags": list(op.tags),
        "parameters": parameters,
        "responses": responses,
    }
    if op.body is not None:
        out["requestBody"] = {"required": True, "content": _content(op.body)}
    if op.api_key == "required":
        out["security"] = [{"apiKey": []}]
    elif op.api_key == "optional":
        out["security"] = [{"apiKey": []}, {}]
    return out


def _component_schemas() -> dict[str, Any]:
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    for op in OPERATIONS:
        if isinstance(op.body, type):
            models.append((op.body, "validation"))
        models += [(kind, "serialization") for kind in op.ok.values() if isinstance(kind, type)]
    models.append((r.ErrorResponse, "serialization"))
    _, top = models_json_schema(list(dict.fromkeys(models)), ref_template=REF)
    return top["$defs"]


def build_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route."""
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Oshara token server",
            "version": version("oshara"),
            "description": "Start voice sessions with characters, and read what happened in them. "
            'Every error is `{"error": {"code", "message", "details"}}`.',
        },
        "paths": paths,
        "components": {
            "schemas": _component_schemas(),
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a key from TOKEN_SERVER_API_KEYS",
                }
            },
        },
    }


OPENAPI = web.AppKey("openapi", dict)


async def openapi_view(request: web.Request) -> web.Response:
    """`GET /openapi.json`: this API, as OpenAPI 3.1; no credentials needed, none inside."""
    return json_response(request.app[OPENAPI])
