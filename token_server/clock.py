"""The token server's time: one clock, timezone-aware UTC, that tests can set.

Every deadline, sweep and record time comes from `utcnow()`, which asks `CLOCK`. A test
moves time by replacing `CLOCK.now` (the `clock` fixture in `tests/conftest.py`)
instead of editing the times stored in the database.
"""

from __future__ import annotations

import datetime as dt
from typing import overload


class Clock:
    """The source of the current time; `now()` is what tests replace."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware UTC."""
        return dt.datetime.now(dt.UTC)


CLOCK = Clock()


def utcnow() -> dt.datetime:
    """The current time by `CLOCK`, timezone-aware UTC."""
    return CLOCK.now()


@overload
def as_utc(value: dt.datetime) -> dt.datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """A stored time as aware UTC (SQLite hands back naive values, all written as UTC)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def iso(value: dt.datetime | None) -> str | None:
    """A stored time as ISO 8601 UTC, for responses."""
    value = as_utc(value)
    return value.isoformat() if value is not None else None
