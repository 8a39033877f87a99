"""Log lines as fixed messages followed by their values: `message key=value …`."""

from __future__ import annotations

import logging

from contract.ingest_token import SHORT_KEY_WARNING, quiet_short_secret

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class KeyValueFormatter(logging.Formatter):
    """Appends each `extra={...}` value to the fixed message."""

    def format(self, record: logging.LogRecord) -> str:
        """The standard line, then ` key=value` for every extra attribute."""
        line = super().format(record)
        if record.name == "aiohttp.access":  # its extras repeat the line itself
            return line
        extras = " ".join(f"{k}={v!r}" for k, v in vars(record).items() if k not in _STANDARD)
        return f"{line} {extras}" if extras else line


def configure_logging(level: str) -> None:
    """Log to stderr with `KeyValueFormatter`."""
    handler = logging.StreamHandler()
    handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    if logging.getLogger().level > logging.DEBUG:
        # two lines about the migration context at every start say nothing to a user
        logging.getLogger("alembic").setLevel(logging.WARNING)


def warn_about_short_secret(secret: str) -> None:
    """Say once that a short LiveKit secret is for development, instead of a warning per token."""
    if quiet_short_secret(secret):
        logging.getLogger("token_server").warning(SHORT_KEY_WARNING)
