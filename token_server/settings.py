"""The token server's settings, read once from the environment at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from contract import DEFAULT_CHARACTERS_DIR
from contract.livekit_settings import LiveKitSettings


class Settings(LiveKitSettings):
    """Every setting has an environment variable of the same name in capitals.

    The LiveKit ones, and the `AGENT_NAME` sessions dispatch, are the worker's too
    (`LiveKitSettings`); `LIVEKIT_API_URL` is where the API is called when it is not
    at `LIVEKIT_URL`.
    """

    livekit_api_url: str | None = None
    livekit_timeout_seconds: float = Field(10.0, gt=0, le=60)
    # "room": CreateRoom carries the dispatch. "explicit": also call CreateDispatch,
    # for older self-hosted servers that ignore CreateRoom's `agents`.
    livekit_dispatch_mode: str = Field("room", pattern="^(room|explicit)$")
    room_empty_timeout_seconds: int = Field(120, ge=1)
    room_departure_timeout_seconds: int = Field(20, ge=0)

    database_url: str = "sqlite+aiosqlite:///./data/oshara.db"
    characters_dir: Path = DEFAULT_CHARACTERS_DIR
    token_server_api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    token_ttl_seconds: int = Field(3600, ge=60, le=24 * 3600)
    global_max_concurrent_sessions: int | None = Field(None, ge=1)
    idempotency_window_seconds: int = Field(600, ge=1)
    retry_after_seconds: int = Field(30, ge=1)
    # How long events for an ended session are still accepted (a worker's late flush).
    late_event_window_seconds: int = Field(600, ge=0)
    # How long after its start a session waits for its agent. LiveKit drops a dispatch
    # no worker can take ("no workers with sufficient capacity") and never retries, so a
    # session whose agent has not joined by then is ended (`agent_unavailable`).
    agent_join_timeout_seconds: int = Field(60, ge=5)
    # How often sessions past their agent's deadline, their join window or their
    # maximum duration are ended.
    sweep_interval_seconds: float = Field(10.0, gt=0)
    # How often live sessions are checked against the rooms LiveKit still has (a
    # restarted livekit-server loses its rooms without a `room_finished` webhook).
    reconcile_interval_seconds: float = Field(30.0, gt=0)
    # Only sessions older than this are checked, so a start still waiting for its
    # CreateRoom is never taken for a vanished room; longer than the LiveKit timeout.
    reconcile_grace_seconds: float = Field(60.0, gt=0)
    webhook_poll_seconds: float = Field(2.0, gt=0)
    webhook_timeout_seconds: float = Field(10.0, gt=0)
    webhook_retry_base_seconds: float = Field(10.0, gt=0)
    webhook_retry_max_seconds: float = Field(600.0, gt=0)
    # Post-call webhooks are retried for this long after the session ends.
    webhook_retry_window_seconds: float = Field(7200.0, ge=3600)
    # Post-call analysis: an OpenAI-compatible chat-completions API. Each setting, when
    # given, wins over the character's `llm` (its `base_url` and `model`); the key is
    # only ever this one.
    analysis_llm_base_url: str | None = Field(None, pattern=r"^https?://")
    analysis_llm_model: str | None = Field(None, min_length=1, max_length=200)
    analysis_llm_api_key: SecretStr | None = None
    analysis_llm_timeout_seconds: float = Field(60.0, gt=0, le=600)
    analysis_max_attempts: int = Field(3, ge=1, le=10)
    analysis_retry_base_seconds: float = Field(5.0, gt=0)
    analysis_poll_seconds: float = Field(2.0, gt=0)
    # How long a post-call webhook waits for the session's analysis before it is sent
    # without it (a `session.analyzed` delivery follows when the analysis arrives).
    analysis_webhook_wait_seconds: float = Field(120.0, ge=0, le=3600)

    @field_validator("token_server_api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @model_validator(mode="after")
    def _grace_outlasts_create_room(self) -> Settings:
        if self.reconcile_grace_seconds <= self.livekit_timeout_seconds:
            raise ValueError(
                "RECONCILE_GRACE_SECONDS must be longer than LIVEKIT_TIMEOUT_SECONDS, or a session "
                "still waiting for CreateRoom could be ended as if its room had vanished"
            )
        return self
