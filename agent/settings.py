"""The agent worker's settings, read once from the environment at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from contract.livekit_settings import LiveKitSettings
from contract.loader import DEFAULT_CHARACTERS_DIR


class Settings(LiveKitSettings):
    """Every setting has an environment variable of the same name in capitals.

    The LiveKit ones, and `AGENT_NAME` the agent registers under, are the token
    server's too (`LiveKitSettings`).
    """

    token_server_url: str = "http://127.0.0.1:8080"  # noqa: S105 - a URL, not a secret

    deepgram_api_key: SecretStr | None = None
    deepgram_base_url: str = "wss://api.deepgram.com/v1/listen"

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None

    chatterbox_url: str | None = None
    characters_dir: Path = DEFAULT_CHARACTERS_DIR

    # A worker takes no more sessions above this load (0..1): the busier of its CPU and
    # its sessions out of MAX_SESSIONS_PER_WORKER (default two per core); at 1 the CPU is
    # not counted. A job process using more memory than JOB_MEMORY_WARN_MB is logged.
    load_threshold: float = Field(0.75, gt=0, le=1)
    max_sessions_per_worker: int | None = Field(None, ge=1, le=1000)
    # Job processes kept warm (models loaded) for the next sessions. Default: two under
    # `dev`, where livekit-agents keeps none (the first call then waits ~20 s and a second
    # one arriving meanwhile finds the worker full), and up to 4 under `start`.
    idle_processes: int | None = Field(None, ge=0, le=64)
    # The worker's own health and debug HTTP server (livekit-agents: 8081 under `start`,
    # a free port under `dev`); 0 picks a free one, so several workers share a machine.
    worker_http_port: int | None = Field(None, ge=0, le=65535)
    job_memory_warn_mb: float = Field(1500, gt=0)
    # How long a new job process may take to load its models (Silero VAD, the turn
    # detector) before livekit-agents gives up on it. Its own default, 10 s, is not
    # enough on a busy 2-core machine, where a failed start leaves the call unanswered.
    process_start_timeout_seconds: float = Field(60.0, gt=0, le=600)
    # How many times in a row STT, LLM or TTS may fail before the session ends.
    max_provider_errors: int = Field(3, ge=1, le=20)
    # Retries of one STT/LLM/TTS request before it counts as an error, and the pause between.
    provider_max_retry: int = Field(2, ge=0, le=10)
    provider_retry_interval: float = Field(1.0, ge=0, le=30)
    # Size limit of the session metadata block shown to the LLM, in bytes of JSON.
    metadata_prompt_limit: int = Field(4000, ge=100, le=100_000)

    @field_validator("deepgram_api_key", "openai_api_key", "openai_base_url", "chatterbox_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `.env.example` lists `DEEPGRAM_API_KEY=`: an empty value means "not set", not a key
        return None if isinstance(value, str) and not value.strip() else value
