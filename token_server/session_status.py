"""Where a session is in its life: `pending` → `active` → `ended`, or `failed` at the start.

A `pending` or `active` session is live and holds a concurrency slot; an `ended` or
`failed` one is final and has given its slot back.
"""

from __future__ import annotations

from enum import StrEnum


class SessionStatus(StrEnum):
    """A session's status, stored and shown as its value."""

    PENDING = "pending"  # the room exists; nobody has joined yet
    ACTIVE = "active"  # the user or the agent joined
    ENDED = "ended"  # over, for the reason its `status_reason` names
    FAILED = "failed"  # never started: LiveKit could not create its room

    @property
    def live(self) -> bool:
        """Whether a session in this status holds a concurrency slot."""
        return self in LIVE_STATUSES

    @property
    def final(self) -> bool:
        """Whether a session in this status is over (its end reason is shown)."""
        return not self.live


LIVE_STATUSES = (SessionStatus.PENDING, SessionStatus.ACTIVE)
