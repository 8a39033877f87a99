"""A LiveKit server API stand-in on loopback: the Twirp RoomService and
AgentDispatchService, speaking protobuf (or JSON) as livekit-api does.

Tests run against a real livekit-server (tests/conftest.py); this stand-in exists
only for what that server cannot be made to do on cue:

- fail: `fail_status` refuses CreateRoom and CreateDispatch, `list_fail_status`
  refuses ListRooms alone (so sessions still start while LiveKit cannot list);
- stall: `delay_seconds` holds CreateRoom and ListRooms past the caller's timeout;
- lose every room at once without a word: `LiveKitState.restart()`, as a restarted
  livekit-server does (the e2e tests restart a real one; here it costs nothing and
  disturbs no other test's rooms);
- tell what it was asked: which rooms ListRooms was asked about, in what batches.

It verifies each request's JWT with livekit-api's `TokenVerifier` (signature,
issuer, expiry) and the grant the real server requires. ListRooms answers from
the rooms it created and has not deleted. Run it alone with
`python -m testkit.standins.livekit --port 7880` (the benchmark does).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from livekit import api
from livekit.protocol import agent_dispatch, models, room

DEFAULT_API_KEY = "devkey"
DEFAULT_API_SECRET = "standin-secret-that-is-long-enough-for-hs256"


@dataclass
class LiveKitState:
    """What the stand-in was asked, and how it should misbehave."""

    api_key: str = DEFAULT_API_KEY
    api_secret: str = DEFAULT_API_SECRET
    rooms: dict[str, room.CreateRoomRequest] = field(default_factory=dict)
    created: list[room.CreateRoomRequest] = field(default_factory=list)
    dispatches: list[agent_dispatch.CreateAgentDispatchRequest] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    listed: list[room.ListRoomsRequest] = field(default_factory=list)
    auth_headers: list[str] = field(default_factory=list)
    fail_status: int | None = None
    # Fails ListRooms only, so sessions can still start while LiveKit cannot list.
    list_fail_status: int | None = None
    delay_seconds: float = 0.0
    record: bool = True

    def restart(self) -> None:
        """Lose every room without a word, as a restarted livekit-server does."""
        self.rooms.clear()


STATE = web.AppKey("livekit_state", LiveKitState)


def _twirp_error(status: int, code: str, msg: str) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status)


def _decode(request_body: bytes, content_type: str, message: Message) -> Message:
    if content_type == "application/json":
        return json_format.Parse(request_body, message)
    message.ParseFromString(request_body)
    return message


def _encode(message: Message, content_type: str) -> web.Response:
    if content_type == "application/json":
        return web.Response(text=json_format.MessageToJson(message), content_type="application/json")
    return web.Response(body=message.SerializeToString(), content_type="application/protobuf")


def _verify(request: web.Request, state: LiveKitState) -> api.VideoGrants | web.Response:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return _twirp_error(401, "unauthenticated", "authorization header missing")
    try:
        claims = api.TokenVerifier(state.api_key, state.api_secret).verify(token)
    except Exception as exc:  # jwt raises many kinds; any of them is a 401
        return _twirp_error(401, "unauthenticated", f"invalid token: {type(exc).__name__}")
    if state.record:
        state.auth_headers.append(request.headers["Authorization"])
    return claims.video or api.VideoGrants()


async def create_room(request: web.Request) -> web.Response:
    state = request.app[STATE]
    grants = _verify(request, state)
    if isinstance(grants, web.Response):
        return grants
    if not grants.room_create:
        return _twirp_error(403, "permission_denied", "roomCreate grant required")
    if state.delay_seconds:
        await asyncio.sleep(state.delay_seconds)
    if state.fail_status:
        return _twirp_error(state.fail_status, "internal", "stand-in told to fail")
    try:
        req = _decode(await request.read(), request.content_type, room.CreateRoomRequest())
    except (DecodeError, json_format.ParseError):
        return _twirp_error(400, "malformed", "could not decode CreateRoomRequest")
    if not req.name:
        return _twirp_error(400, "invalid_argument", "name is required")
    existing = state.rooms.get(req.name)
    if existing is None:
        existing = req
        if state.record:
            state.rooms[req.name] = req
            state.created.append(req)
    out = models.Room(
        sid="RM_" + req.name[-12:],
        name=existing.name,
        empty_timeout=existing.empty_timeout,
        departure_timeout=existing.departure_timeout,
        metadata=existing.metadata,
        creation_time=int(time.time()),
    )
    return _encode(out, request.content_type)


async def create_dispatch(request: web.Request) -> web.Response:
    state = request.app[STATE]
    grants = _verify(request, state)
    if isinstance(grants, web.Response):
        return grants
    req = _decode(await request.read(), request.content_type, agent_dispatch.CreateAgentDispatchRequest())
    if not (grants.room_admin and grants.room == req.room):
        return _twirp_error(403, "permission_denied", "roomAdmin grant for the room required")
    if state.fail_status:
        return _twirp_error(state.fail_status, "internal", "stand-in told to fail")
    state.dispatches.append(req)
    out = agent_dispatch.AgentDispatch(
        id="AD_1", agent_name=req.agent_name, room=req.room, metadata=req.metadata
    )
    return _encode(out, request.content_type)


async def delete_room(request: web.Request) -> web.Response:
    state = request.app[STATE]
    grants = _verify(request, state)
    if isinstance(grants, web.Response):
        return grants
    if not grants.room_create:
        return _twirp_error(403, "permission_denied", "roomCreate grant required")
    req = _decode(await request.read(), request.content_type, room.DeleteRoomRequest())
    state.rooms.pop(req.room, None)
    state.deleted.append(req.room)
    return _encode(room.DeleteRoomResponse(), request.content_type)


async def list_rooms(request: web.Request) -> web.Response:
    state = request.app[STATE]
    grants = _verify(request, state)
    if isinstance(grants, web.Response):
        return grants
    if not grants.room_list:
        return _twirp_error(403, "permission_denied", "roomList grant required")
    if state.delay_seconds:
        await asyncio.sleep(state.delay_seconds)
    status = state.list_fail_status or state.fail_status
    if status:
        return _twirp_error(status, "internal", "stand-in told to fail")
    req = _decode(await request.read(), request.content_type, room.ListRoomsRequest())
    if state.record:
        state.listed.append(req)
    # As the real server does: no names lists every room, names list those that exist.
    names = list(req.names) or list(state.rooms)
    out = room.ListRoomsResponse(
        rooms=[
            models.Room(sid="RM_" + name[-12:], name=name, metadata=state.rooms[name].metadata)
            for name in names
            if name in state.rooms
        ]
    )
    return _encode(out, request.content_type)


def create_standin(state: LiveKitState | None = None) -> web.Application:
    """The stand-in app, recording into `state`."""
    app = web.Application()
    app[STATE] = state or LiveKitState()
    app.router.add_post("/twirp/livekit.RoomService/CreateRoom", create_room)
    app.router.add_post("/twirp/livekit.RoomService/DeleteRoom", delete_room)
    app.router.add_post("/twirp/livekit.RoomService/ListRooms", list_rooms)
    app.router.add_post("/twirp/livekit.AgentDispatchService/CreateDispatch", create_dispatch)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="LiveKit server API stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7880)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--api-secret", default=DEFAULT_API_SECRET)
    parser.add_argument("--no-record", action="store_true", help="keep no history (for long benchmarks)")
    args = parser.parse_args()
    state = LiveKitState(api_key=args.api_key, api_secret=args.api_secret, record=not args.no_record)
    web.run_app(create_standin(state), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
