"""The LiveKit settings both services read: where the server is, its API key pair, the agent's name.

The token server creates rooms and dispatches the agent by `AGENT_NAME`; the worker
registers under that name. Both sign and verify with `LIVEKIT_API_KEY` /
`LIVEKIT_API_SECRET` (the ingest token too). One definition keeps their defaults, which
match `livekit-server --dev`, from drifting apart.
"""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class LiveKitSettings(BaseSettings):
    """The shared part of each service's `Settings`: an environment variable per field, in capitals."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    livekit_url: str = "ws://localhost:7880"
    livekit_api_key: str = "devkey"
    livekit_api_secret: SecretStr = SecretStr("secret")
    agent_name: str = "oshara-agent"
