"""The life of a session after it starts: joined, ended, swept.

A session ends, and frees its slot, by whichever comes first: LiveKit's
`room_finished` webhook, the agent reporting the end, nobody joining within the
join window (the user's, not the agent's, arrival), or passing the character's
maximum duration. The last two are found by
a periodic sweep of the database, so they survive restarts and several token
servers may sweep at once (each transition is conditional and happens once).
"""

from __future__ import annotations

import logging
from typing import Any

from characters import Character

from .livekit import LiveKitRooms
from .store import LIVE_STATUSES, SessionStore, utcnow

log = logging.getLogger("token_server.lifecycle")


class SessionLifecycle:
    """Moves sessions through pending → active → ended."""

    def __init__(self, store: SessionStore, characters: dict[str, Character], rooms: LiveKitRooms) -> None:
        """Record in `store`; look up webhooks in `characters`; close rooms through `rooms`."""
        self._store = store
        self._characters = characters
        self._rooms = rooms

    async def joined(self, session_id: str, reason: str, *, user: bool) -> bool:
        """The user or the agent joined: `pending` becomes `active`.

        Only the user's arrival meets the join window: a session whose agent joined
        but whose user never did is still ended at its join deadline.
        """
        if user:
            await self._store.mark_user_joined(session_id)
        return await self._store.transition(session_id, "active", reason, from_statuses=("pending",))

    async def end(
        self, session_id: str, character: str, reason: str, *, usage: dict[str, Any] | None = None
    ) -> bool:
        """End a live session, freeing its slot and queueing its post-call webhook.

        Usage reported after another path already ended the session is still kept.
        """
        found = self._characters.get(character)
        webhook_url = str(found.webhook_url) if found and found.webhook_url else None
        moved = await self._store.transition(
            session_id, "ended", reason, from_statuses=LIVE_STATUSES, usage=usage, webhook_url=webhook_url
        )
        if moved:
            log.info("session ended", extra={"session_id": session_id, "reason": reason})
        elif usage is not None:
            await self._store.set_usage(session_id, usage)
        return moved

    async def sweep(self) -> int:
        """End every session past its join window or maximum duration; returns how many."""
        ended = 0
        for row, reason in await self._store.overdue(utcnow()):
            if not await self.end(row.id, row.character, reason):
                continue
            ended += 1
            # Close the room so the agent (and any user) leave; the session is ended either way.
            await self._rooms.delete_room(row.room_name)
        return ended
