"""The test run's real livekit-server: its key pair, and what it holds, as its own API says.

`tests/conftest.py` starts one server for the run (fixture `livekit_server`); the token
servers under test create their rooms and dispatches on it, and a test reads them back
through `LiveKitRecord` (fixture `livekit`). Tests in one process run one at a time and
room names are random, so the rooms that appeared after a test began are that test's
own: `new_rooms()` is how a test says "nothing was created" without counting anyone
else's rooms.
"""

from __future__ import annotations

from livekit import api
from livekit.protocol import agent_dispatch, models

API_KEY = "oshara-test-key"
API_SECRET = "oshara-test-secret-long-enough-for-hs256"  # 32+ bytes: PyJWT does not warn


class LiveKitRecord:
    """Rooms and dispatches on the real server, read through RoomService and AgentDispatchService."""

    def __init__(self, http_url: str, lkapi: api.LiveKitAPI, open_before: set[str]) -> None:
        """Read the server at `http_url` through `lkapi`; `open_before` were open when the test began."""
        self.url = http_url
        self.api = lkapi
        self._open_before = open_before

    @classmethod
    async def open(cls, http_url: str) -> LiveKitRecord:
        """Connect to the server at `http_url` and note which rooms are open now."""
        lkapi = api.LiveKitAPI(url=http_url, api_key=API_KEY, api_secret=API_SECRET)
        listed = await lkapi.room.list_rooms(api.ListRoomsRequest())
        return cls(http_url, lkapi, {r.name for r in listed.rooms})

    async def aclose(self) -> None:
        """Close the API client's HTTP session."""
        await self.api.aclose()

    async def room(self, name: str) -> models.Room | None:
        """The open room called `name` (metadata, empty_timeout, departure_timeout), or None."""
        listed = await self.api.room.list_rooms(api.ListRoomsRequest(names=[name]))
        return next((r for r in listed.rooms if r.name == name), None)

    async def exists(self, name: str) -> bool:
        """Whether the room called `name` is open: a deleted room is gone from ListRooms."""
        return await self.room(name) is not None

    async def dispatches(self, name: str) -> list[agent_dispatch.AgentDispatch]:
        """The agent dispatches of the open room `name`, CreateRoom's own included.

        Ask only about a room that exists: for a missing one the server waits seconds
        for an answer that never comes.
        """
        return list(await self.api.agent_dispatch.list_dispatch(name))

    async def new_rooms(self) -> dict[str, models.Room]:
        """The rooms open now that were not open when the test began, by name."""
        listed = await self.api.room.list_rooms(api.ListRoomsRequest())
        return {r.name: r for r in listed.rooms if r.name not in self._open_before}
