"""Request and response bodies of the public API, with every limit stated."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contract.language import LanguageTag
from contract.model import SessionMode
from contract.session_config import metadata_size
from contract.voice_models import VoiceModelName

MAX_BODY_BYTES = 64 * 1024
MAX_METADATA_BYTES = 16 * 1024
MAX_URL = 2048
MAX_MCP_HEADERS = 32
MAX_HEADER_VALUE = 4096
MAX_GRANT_CHARS = 8192

# RFC 9110 token characters.
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
# Hop-by-hop and framing headers, and the ones the MCP client and our worker set.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "accept",
        "mcp-session-id",
        "mcp-protocol-version",
        "x-session-id",
        "x-character",
    }
)


class SessionFields(BaseModel):
    """The fields that shape a session, as a request body or a grant's claims carry them.

    Every field but `agent` overrides the character's default.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    agent: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    mode: SessionMode | None = None
    language: LanguageTag | None = None
    system_prompt: str | None = Field(None, min_length=1, max_length=20_000)
    greeting: str | None = Field(None, max_length=2_000)
    voice_model: VoiceModelName | None = Field(None, max_length=64)
    reference_audio_url: str | None = Field(None, max_length=MAX_URL)
    mcp_headers: dict[str, str] | None = Field(None, repr=False)
    origin_url: str | None = Field(None, max_length=MAX_URL)
    metadata: dict[str, Any] | None = None

    @field_validator("reference_audio_url")
    @classmethod
    def _reference_audio_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            has_host = bool(parts.hostname)
        except ValueError:
            has_host = False
        if parts.scheme not in ("http", "https") or not has_host:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @field_validator("mcp_headers")
    @classmethod
    def _mcp_headers(cls, headers: dict[str, str] | None) -> dict[str, str] | None:
        if headers is None:
            return None
        if len(headers) > MAX_MCP_HEADERS:
            raise ValueError(f"at most {MAX_MCP_HEADERS} headers")
        problems, seen = [], set()
        for name, value in headers.items():
            shown = name[:64]
            if not _HEADER_NAME.match(name):
                problems.append(f"{shown!r} is not a valid header name")
            elif name.lower() in RESERVED_HEADERS:
                problems.append(f"{shown!r} is a hop-by-hop, framing or reserved header")
            elif name.lower() in seen:
                problems.append(f"{shown!r} is given twice (header names are case-insensitive)")
            # Never echo the value: it may be a credential.
            if any(c in value for c in "\r\n\0"):
                problems.append(f"the value of {shown!r} contains CR, LF or NUL")
            if len(value.encode()) > MAX_HEADER_VALUE:
                problems.append(f"the value of {shown!r} is over {MAX_HEADER_VALUE} bytes")
            seen.add(name.lower())
        if problems:
            raise ValueError("; ".join(problems))
        return headers

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and metadata_size(value) > MAX_METADATA_BYTES:
            raise ValueError(f"must be at most {MAX_METADATA_BYTES // 1024} KB as JSON")
        return value


class StartSessionRequest(SessionFields):
    """`POST /v1/sessions`: the session's fields, and a grant from the site's backend if it has one."""

    grant: str | None = Field(None, min_length=1, max_length=MAX_GRANT_CHARS, repr=False)


class StartSessionResponse(BaseModel):
    """The answer to a started session: what the browser needs to join, and what was decided."""

    token: str
    livekit_url: str
    room_name: str
    participant_identity: str
    session_id: str
    expires_in_seconds: int
    character_slug: str
    mode: SessionMode
    system_prompt: str
    greeting: str
    # The names LiveKit's standard token endpoint uses, so its client SDKs can use ours.
    server_url: str
    participant_token: str


class AnalysisRequest(BaseModel):
    """`POST /v1/sessions/{session_id}/analysis`: run the post-call analysis again."""

    model_config = ConfigDict(extra="forbid", strict=True)

    version: str = Field(
        "session",
        pattern=r"^(session|current|[0-9a-f]{16})$",
        description="`session`: the character version that handled the call (the default); "
        "`current`: the version loaded now; or a version of the session's character by name",
    )
