"""The voice service's settings, read once from the environment at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from contract.voice_models import DEFAULT_VOICE_MODEL, VOICE_MODELS

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "oshara" / "chatterbox"


class ServiceSettings(BaseSettings):
    """Every setting has an environment variable `CHATTERBOX_<NAME>`.

    `model_dir`, when set, holds one directory per voice model
    (`<model_dir>/chatterbox-en-v1/ve.safetensors`, ...) and nothing is fetched from the
    network. Otherwise weights come from the Hugging Face cache in `cache_dir`, filled by
    `python -m voice_service download` (or `python -m agent download-files`).
    """

    model_config = SettingsConfigDict(
        env_prefix="CHATTERBOX_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    host: str = "127.0.0.1"
    port: int = Field(8091, ge=0, le=65535)
    # Voice models this process loads, comma-separated in the environment.
    models: Annotated[list[str], NoDecode] = Field(default_factory=lambda: [DEFAULT_VOICE_MODEL])
    model_dir: Path | None = None
    cache_dir: Path = DEFAULT_CACHE_DIR
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # Upper bound on speech tokens per sentence (25 per second of audio). None keeps
    # chatterbox's own limit (1000, i.e. 40 s); tiny test models never stop on their own.
    max_new_tokens: int | None = Field(None, ge=1, le=1000)

    # Text hygiene: the first chunk is kept short for a fast first byte; no chunk may
    # pass the model's ~40 s limit (about 600 characters of English at 15 chars/s).
    first_chunk_chars: int = Field(120, ge=20, le=600)
    max_chunk_chars: int = Field(300, ge=40, le=600)
    max_text_chars: int = Field(5000, ge=1, le=100_000)

    # Reference audio fetching (the URL is untrusted input).
    reference_timeout_s: float = Field(10.0, gt=0, le=60)
    reference_max_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    reference_min_seconds: float = Field(3.0, gt=0)
    reference_max_seconds: float = Field(60.0, gt=0)
    reference_max_redirects: int = Field(3, ge=0, le=10)
    # Hosts (exact names or IP literals) allowed even though they resolve to private or
    # loopback addresses. Empty in production; tests serve clips from 127.0.0.1.
    reference_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Voice conditionals cache: entries kept in memory; on disk under cache_dir.
    conditionals_cache_size: int = Field(256, ge=1)
    conditionals_disk_cache: bool = True
    # The plugin names the reference URL on every utterance: what a URL gave (a clip's
    # hash, or a refusal) is remembered this long, so later utterances neither fetch it
    # again nor wait again for a URL that stalls.
    reference_memo_seconds: float = Field(600.0, ge=0)

    @field_validator("models", "reference_allowed_hosts", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("models")
    @classmethod
    def _known_models(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in VOICE_MODELS]
        if unknown:
            known = ", ".join(sorted(VOICE_MODELS))
            raise ValueError(f"unknown voice models {unknown}; known models: {known}")
        if not value:
            raise ValueError("at least one voice model must be loaded")
        return value

    @property
    def conditionals_dir(self) -> Path:
        """Where computed voice conditionals are kept on disk."""
        return self.cache_dir / "conditionals"
