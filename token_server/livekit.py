"""LiveKit: one CreateRoom per session, the browser's join token, and which rooms exist.

The room, its configuration and the agent dispatch are created together.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence

import aiohttp
from livekit import api

from .errors import UpstreamFailed
from .settings import Settings

log = logging.getLogger("token_server.livekit")

# Room names per ListRooms call: a few kilobytes of request, however many sessions are live.
LIST_ROOMS_BATCH = 200


class LiveKitRooms:
    """Creates, closes and lists session rooms through LiveKit's server API; signs join tokens."""

    def __init__(self, settings: Settings, http_session: aiohttp.ClientSession) -> None:
        """Talk to the LiveKit server `settings` names, over `http_session`."""
        self._settings = settings
        self._api = api.LiveKitAPI(
            # livekit-api turns ws(s):// into http(s):// itself.
            url=settings.livekit_api_url or settings.livekit_url,
            api_key=settings.livekit_api_key,
            api_secret=settings.livekit_api_secret.get_secret_value(),
            session=http_session,
        )
        self._timeout = aiohttp.ClientTimeout(total=settings.livekit_timeout_seconds)

    async def create_room(self, *, room_name: str, room_metadata: str, dispatch_metadata: str) -> None:
        """Create the room with its public metadata and one dispatch of our agent.

        Raises:
            UpstreamFailed: LiveKit refused, failed or did not answer in time.
        """
        settings = self._settings
        explicit = settings.livekit_dispatch_mode == "explicit"
        # One dispatch either way: a server that honours CreateRoom's `agents` would make a
        # second one (a second agent in the room) beside the explicit CreateDispatch.
        agents = (
            []
            if explicit
            else [api.RoomAgentDispatch(agent_name=settings.agent_name, metadata=dispatch_metadata)]
        )
        request = api.CreateRoomRequest(
            name=room_name,
            empty_timeout=settings.room_empty_timeout_seconds,
            departure_timeout=settings.room_departure_timeout_seconds,
            metadata=room_metadata,
            agents=agents,
        )
        try:
            async with asyncio.timeout(settings.livekit_timeout_seconds):
                await self._api.room.create_room(request)
                if explicit:
                    await self._api.agent_dispatch.create_dispatch(
                        api.CreateAgentDispatchRequest(
                            agent_name=settings.agent_name, room=room_name, metadata=dispatch_metadata
                        )
                    )
        except api.ServerError as exc:
            log.warning(
                "livekit refused the room", extra={"room": room_name, "status": exc.status, "code": exc.code}
            )
            raise UpstreamFailed(
                "The voice server refused to create the session's room.",
                details={"livekit_status": exc.status},
            ) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("livekit unreachable", extra={"room": room_name, "error": type(exc).__name__})
            raise UpstreamFailed("The voice server could not be reached. Please try again.") from None

    async def delete_room(self, room_name: str) -> bool:
        """Close a room, disconnecting everyone; best effort, returns whether it worked."""
        try:
            async with asyncio.timeout(self._settings.livekit_timeout_seconds):
                await self._api.room.delete_room(api.DeleteRoomRequest(room=room_name))
        except (api.ServerError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning(
                "livekit did not delete the room", extra={"room": room_name, "error": type(exc).__name__}
            )
            return False
        return True

    async def existing_rooms(self, room_names: Sequence[str]) -> set[str] | None:
        """Which of `room_names` LiveKit still has, or None when it could not say.

        Asks ListRooms filtered by name, `LIST_ROOMS_BATCH` names per call. Any failed
        call (refused, unreachable, too slow) makes the whole answer None, logged once:
        a LiveKit that cannot answer must not look like one that lost every room.
        """
        found: set[str] = set()
        for start in range(0, len(room_names), LIST_ROOMS_BATCH):
            batch = list(room_names[start : start + LIST_ROOMS_BATCH])
            try:
                async with asyncio.timeout(self._settings.livekit_timeout_seconds):
                    listed = await self._api.room.list_rooms(api.ListRoomsRequest(names=batch))
            except api.ServerError as exc:
                log.warning("livekit did not list rooms", extra={"status": exc.status, "code": exc.code})
                return None
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                log.warning("livekit did not list rooms", extra={"error": type(exc).__name__})
                return None
            found.update(r.name for r in listed.rooms)
        return found

    def participant_token(self, *, room_name: str, identity: str) -> str:
        """A join token for `room_name` only: publish the microphone, subscribe, send data."""
        settings = self._settings
        grants = api.VideoGrants(
            room_join=True,
            room=room_name,
            can_publish=True,
            can_publish_sources=["microphone"],
            can_subscribe=True,
            can_publish_data=True,
        )
        return (
            api.AccessToken(settings.livekit_api_key, settings.livekit_api_secret.get_secret_value())
            .with_identity(identity)
            .with_ttl(dt.timedelta(seconds=settings.token_ttl_seconds))
            .with_grants(grants)
            .to_jwt()
        )
