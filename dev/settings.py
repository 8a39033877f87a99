"""`python -m dev`'s own settings; the services it starts read theirs."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting has an environment variable of the same name in capitals."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # The token server's and the worker's log level (livekit-agents' `dev` would say DEBUG).
    log_level: str = Field("INFO", pattern="(?i)^(debug|info|warning|error)$")
    # The address a LiveKit started here hands clients for media; unset: as
    # `livekit-server --dev` picks it (the first non-loopback IPv4 address).
    livekit_node_ip: str | None = None
