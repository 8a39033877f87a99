"""Faults during a call, through the real livekit-server: what the user sees, what the record says.

Each test breaks one real process mid-call (the worker, the token server, the
livekit-server itself, one of two workers) and checks that the user is not left in
a dead call, that the session record says what happened, and that the character's
concurrency slot comes back. Everything runs inside the test run's network namespace.
"""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path
from typing import Any

import pytest

from testkit.e2e.stack import Stack, run_stack
from testkit.standins.openai_standin import TextReply, ToolCallReply, last_user_text
from testkit.waiting import wait_until

pytestmark = pytest.mark.e2e

TRANSCRIPTS = ["What are your opening hours?", "Thanks, goodbye."]


def script(body: dict[str, Any]) -> TextReply | ToolCallReply:
    user = last_user_text(body).lower()
    if "bye" in user:
        return ToolCallReply([("end_call", {"reason": "the user said goodbye"})])
    if "hours" in user:
        return TextReply("We are open from nine to five.")
    return TextReply("Goodbye!")


def ended_as(stack: Stack, session_id: str, reason: str):
    async def check() -> bool:
        return await stack.status(session_id) == ("ended", reason)

    return check


async def slot_is_free(stack: Stack) -> None:
    """The character allows two live sessions: two more start only if the broken one gave its slot back."""
    for _ in range(2):
        await stack.start_session(metadata={"user_id": "u-9", "user_name": "Bo"})


async def test_the_worker_killed_mid_call(tmp_path: Path, voice_service) -> None:
    async with run_stack(
        tmp_path, voice_url=voice_service.url, script=script, transcripts=TRANSCRIPTS
    ) as stack:
        started, user = await stack.call()
        try:
            await asyncio.to_thread(stack.workers[0].kill)
            # the user sees the agent go and the call close, not a silent room
            await wait_until(lambda: user.agent is None, 60, "LiveKit to notice the agent is gone")
            await wait_until(user.disconnected.is_set, 30, "the token server to close the room")
        finally:
            await user.leave()
        await wait_until(ended_as(stack, started["session_id"], "agent_left"), 30, "the session to end")
        await slot_is_free(stack)


async def test_the_token_server_restarting_mid_call(tmp_path: Path, voice_service) -> None:
    async with run_stack(
        tmp_path, voice_url=voice_service.url, script=script, transcripts=TRANSCRIPTS
    ) as stack:
        started, user = await stack.call()
        session_id = started["session_id"]
        try:
            await wait_until(user.greeted, 60, "the greeting")
            await user.publish_microphone()
            await wait_until(lambda: stack.deepgram.connections, 30, "the agent's STT stream")
            assert stack.token_server is not None
            await asyncio.to_thread(stack.token_server.stop)
            # the call goes on without the token server; the worker buffers its reports
            await user.say("What are your opening hours?")
            await wait_until(
                lambda: any("nine to five" in t for t in user.spoken("agent")),
                60,
                "the answer, while it is down",
            )
            await asyncio.to_thread(stack.start_token_server)
            await user.say("Thanks, goodbye.")
            await wait_until(user.disconnected.is_set, 60, "the agent to end the call")
        finally:
            await user.leave()
        await wait_until(ended_as(stack, session_id, "agent:the user said goodbye"), 30, "the session to end")

        # every report arrived, and each once
        events = await stack.events(session_id)
        ids = collections.Counter(e["id"] for e in events)
        assert [i for i, n in ids.items() if n > 1] == []
        lines = collections.Counter((e["role"], e["text"]) for e in events if e["type"] == "transcript")
        assert lines[("user", TRANSCRIPTS[0])] == 1
        assert lines[("agent", "We are open from nine to five.")] == 1
        kinds = collections.Counter(e["type"] for e in events)
        assert kinds["session_started"] == 1 and kinds["session_ended"] == 1
        await slot_is_free(stack)


async def test_livekit_restarting_mid_call(tmp_path: Path, voice_service) -> None:
    reconcile = {
        "RECONCILE_INTERVAL_SECONDS": "1",
        "RECONCILE_GRACE_SECONDS": "2",
        "LIVEKIT_TIMEOUT_SECONDS": "1",
    }
    async with run_stack(
        tmp_path,
        voice_url=voice_service.url,
        script=script,
        transcripts=TRANSCRIPTS,
        token_server_env=reconcile,
    ) as stack:
        started, user = await stack.call()
        try:
            await asyncio.to_thread(stack.livekit.kill)  # no room_finished: the rooms just vanish
            await asyncio.to_thread(stack.livekit.start)
            # the user's connection is gone and cannot come back to a room that no longer exists
            await wait_until(user.disconnected.is_set, 90, "the user to see the call drop")
        finally:
            await user.leave()
        # the token server notices the room is gone and ends the session
        await wait_until(ended_as(stack, started["session_id"], "room_vanished"), 30, "the reconcile")
        events = await stack.events(started["session_id"])
        assert "room_finished" not in [e["type"] for e in events]

        # the worker registers with the restarted server, and the next call works
        await asyncio.to_thread(stack.workers[0].wait_for_log, r"registered worker", 90, after=_second(stack))
        _, again = await stack.call()
        await again.leave()


def _second(stack: Stack) -> int:
    """Where the worker's log stands after its first registration."""
    log = stack.workers[0].log()
    return log.index("registered worker") + 1


async def test_a_second_worker_takes_calls_and_outlives_the_first(tmp_path: Path, voice_service) -> None:
    # one session per worker, CPU not counted: the second call must go to the other worker
    async with run_stack(
        tmp_path,
        voice_url=voice_service.url,
        script=script,
        transcripts=TRANSCRIPTS,
        workers=2,
        worker_env={"MAX_SESSIONS_PER_WORKER": "1"},
    ) as stack:
        first, first_user = await stack.call()
        busy = stack.worker_of(first["room_name"])
        await asyncio.to_thread(busy.wait_for_log, r"marking as unavailable", 30)
        second, second_user = await stack.call()
        other = stack.worker_of(second["room_name"])
        assert other is not busy  # the calls are spread over both workers
        try:
            await asyncio.to_thread(busy.kill)
            await wait_until(first_user.disconnected.is_set, 60, "the first call to close")
            await wait_until(
                ended_as(stack, first["session_id"], "agent_left"), 30, "the first session to end"
            )

            # the other worker's call goes on: the user is still there and gets an answer
            assert not second_user.disconnected.is_set() and second_user.agent is not None
            assert (await stack.status(second["session_id"]))[0] == "active"
            await wait_until(second_user.greeted, 60, "the second call's greeting")
            await second_user.publish_microphone()
            await wait_until(lambda: stack.deepgram.connections, 30, "the agent's STT stream")
            await second_user.say("What are your opening hours?")
            await wait_until(
                lambda: any("nine to five" in t for t in second_user.spoken("agent")),
                60,
                "the second call's answer",
            )
        finally:
            await first_user.leave()
            await second_user.leave()
