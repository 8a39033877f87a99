"""The life of a session after it starts: joined, ended, swept, reconciled.

A session ends, and frees its slot, by whichever comes first: LiveKit's
`room_finished` webhook, the agent reporting the end, no agent joining by the
agent's deadline (LiveKit drops a dispatch no worker can take), nobody joining
within the join window (the user's, not the agent's, arrival), passing the
character's maximum duration, or its room vanishing from LiveKit. The agent's
deadline, the join window and the maximum duration are found by a periodic sweep of
the database, so they survive restarts; a vanished room (a restarted livekit-server sends no `room_finished`) by
a periodic reconcile against LiveKit's ListRooms. Several token servers may sweep
and reconcile at once: each transition is conditional and happens once.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from contract import Character

from .clock import utcnow
from .livekit import LiveKitRooms
from .session_status import LIVE_STATUSES, SessionStatus
from .store import SessionStore

log = logging.getLogger("token_server.lifecycle")


class SessionLifecycle:
    """Moves sessions through pending → active → ended."""

    def __init__(
        self,
        store: SessionStore,
        characters: dict[str, Character],
        rooms: LiveKitRooms,
        *,
        reconcile_grace_seconds: float,
        analysis_wait_seconds: float = 0.0,
    ) -> None:
        """Record in `store`; look up webhooks in `characters`; close and list rooms through `rooms`.

        `reconcile_grace_seconds`: how old a session must be before a missing room ends
        it; longer than a CreateRoom may take. `analysis_wait_seconds`: how long a
        post-call webhook waits for the session's analysis.
        """
        self._store = store
        self._characters = characters
        self._rooms = rooms
        self._reconcile_grace = dt.timedelta(seconds=reconcile_grace_seconds)
        self._analysis_wait = dt.timedelta(seconds=analysis_wait_seconds)

    async def joined(self, session_id: str, reason: str, *, user: bool) -> bool:
        """The user or the agent joined: `pending` becomes `active`.

        Only the user's arrival meets the join window: a session whose agent joined
        but whose user never did is still ended at its join deadline. Only the agent's
        arrival meets the agent's deadline.
        """
        if user:
            await self._store.mark_user_joined(session_id)
        else:
            await self._store.mark_agent_joined(session_id)
        return await self._store.transition(
            session_id, SessionStatus.ACTIVE, reason, from_statuses=(SessionStatus.PENDING,)
        )

    async def end(
        self, session_id: str, character: str, reason: str, *, usage: dict[str, Any] | None = None
    ) -> bool:
        """End a live session, freeing its slot and queueing its post-call webhook and analysis.

        Usage reported after another path already ended the session is still kept.
        """
        found = self._characters.get(character)
        webhook_url = str(found.webhook_url) if found and found.webhook_url else None
        moved = await self._store.transition(
            session_id,
            SessionStatus.ENDED,
            reason,
            from_statuses=LIVE_STATUSES,
            usage=usage,
            webhook_url=webhook_url,
            analysis_wait=self._analysis_wait,
        )
        if moved:
            log.info("session ended", extra={"session_id": session_id, "reason": reason})
        elif usage is not None:
            await self._store.set_usage(session_id, usage)
        return moved

    async def agent_left(self, session_id: str, character: str, room_name: str) -> bool:
        """The agent left a live session without ending it: end it and close the room."""
        if not await self.end(session_id, character, "agent_left"):
            return False
        await self._rooms.delete_room(room_name)
        return True

    async def sweep(self) -> int:
        """End every session past its agent's deadline, join window or maximum duration; returns how many."""
        ended = 0
        for row, reason in await self._store.overdue(utcnow()):
            if not await self.end(row.id, row.character, reason):
                continue
            ended += 1
            # Close the room so the agent (and any user) leave; the session is ended either way.
            await self._rooms.delete_room(row.room_name)
        return ended

    async def reconcile(self) -> int:
        """End every live session whose room LiveKit no longer has; returns how many.

        Only sessions created more than the grace period before this pass began are
        asked about, so a start still creating its room (or one made during the pass)
        is never ended. When LiveKit cannot answer, nothing is ended.
        """
        candidates = await self._store.live_created_before(utcnow() - self._reconcile_grace)
        if not candidates:
            return 0
        existing = await self._rooms.existing_rooms([row.room_name for row in candidates])
        if existing is None:
            return 0
        ended = 0
        for row in candidates:
            if row.room_name not in existing and await self.end(row.id, row.character, "room_vanished"):
                ended += 1
        if ended:
            log.warning("livekit lost the rooms of live sessions", extra={"sessions": ended})
        return ended
