"""The session configuration that travels from the token server to the agent.

Two halves, one contract for producer and consumer:

- `SessionConfig` is the room metadata. Every participant, the browser included,
  can read it, so it holds only the non-secret effective configuration.
- `DispatchConfig` is the dispatch metadata, which only the agent receives: the
  session id and the secrets (per-session `mcp_headers` and the character's MCP
  header templates, whose `${ENV_NAME}` references the worker resolves).
"""

from __future__ import annotations

import json
from typing import Any, Final, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from .model import (
    Character,
    FormConfig,
    LLMConfig,
    MCPServerConfig,
    SessionMode,
    STTConfig,
    TurnConfig,
    VoiceSettings,
)

SESSION_CONFIG_VERSION: Final = 1


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json(self) -> str:
        """Compact JSON for LiveKit metadata."""
        return self.model_dump_json(exclude_none=False)

    @classmethod
    def from_json(cls, raw: str | bytes):
        """Parse metadata written by `to_json`.

        Raises:
            pydantic.ValidationError: missing, malformed or of another version.
        """
        return cls.model_validate_json(raw or b"{}")


class PublicMCPServer(_Wire):
    """An MCP server as the room metadata shows it: no headers."""

    name: str
    url: AnyHttpUrl
    allowed_tools: list[str] | None = None
    timeout: float = 10.0
    metadata_arguments: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def of(cls, server: MCPServerConfig) -> PublicMCPServer:
        """The public part of a character's MCP server entry."""
        return cls(**server.model_dump(exclude={"headers"}))


class SessionConfig(_Wire):
    """Room metadata: the effective, public configuration of one session."""

    version: Literal[1] = SESSION_CONFIG_VERSION
    session_id: str
    character: str
    character_name: str
    mode: SessionMode = "voice"
    """`text`: typed turns and text replies only; the worker starts no STT, VAD or TTS."""
    language: str | None
    system_prompt: str
    greeting: str
    greeting_interruptible: bool = True
    voice_model: str
    voice: VoiceSettings = Field(default_factory=VoiceSettings)
    reference_audio_url: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Verified: from the site's server (an API key or a grant). Binds tool arguments."""
    unverified_metadata: dict[str, Any] = Field(default_factory=dict)
    """From the page itself: shown to the LLM as user-supplied, never bound to anything."""
    form: FormConfig | None = None
    mcp_servers: list[PublicMCPServer] = Field(default_factory=list)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    stt: STTConfig = Field(default_factory=STTConfig)
    turn: TurnConfig = Field(default_factory=TurnConfig)
    max_duration_seconds: int = 3600

    @classmethod
    def for_character(
        cls,
        session_id: str,
        character: Character,
        *,
        language: str | None,
        system_prompt: str,
        greeting: str,
        voice_model: str,
        reference_audio_url: str | None,
        metadata: dict[str, Any],
        unverified_metadata: dict[str, Any] | None = None,
        mode: SessionMode = "voice",
    ) -> SessionConfig:
        """A session of `character` with these effective (already rendered) values."""
        return cls(
            session_id=session_id,
            character=character.slug,
            character_name=character.name,
            mode=mode,
            language=language,
            system_prompt=system_prompt,
            greeting=greeting,
            greeting_interruptible=character.greeting_interruptible,
            voice_model=voice_model,
            voice=character.voice,
            reference_audio_url=reference_audio_url,
            metadata=metadata,
            unverified_metadata=unverified_metadata or {},
            form=character.form,
            mcp_servers=[PublicMCPServer.of(s) for s in character.mcp_servers],
            llm=character.llm,
            stt=character.stt,
            turn=character.turn,
            max_duration_seconds=character.max_duration_seconds,
        )


class DispatchConfig(_Wire):
    """Dispatch metadata: what only the agent may know about a session."""

    version: Literal[1] = SESSION_CONFIG_VERSION
    session_id: str
    mcp_headers: dict[str, str] = Field(default_factory=dict, repr=False)
    mcp_server_headers: dict[str, dict[str, str]] = Field(default_factory=dict, repr=False)

    @classmethod
    def for_session(
        cls, session_id: str, character: Character, mcp_headers: dict[str, str]
    ) -> DispatchConfig:
        """The dispatch metadata for a session of `character`."""
        return cls(
            session_id=session_id,
            mcp_headers=mcp_headers,
            mcp_server_headers={s.name: dict(s.headers) for s in character.mcp_servers if s.headers},
        )


def metadata_size(value: dict[str, Any]) -> int:
    """Serialised size in bytes of user metadata, as it is limited and stored."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
