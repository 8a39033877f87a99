"""A text-only session through the real livekit-server, on a worker with no voice service at all.

The worker has no CHATTERBOX_URL, no voice weights for an embedded service and no
Deepgram key. The session is started in text mode; the user joins without a
microphone, types on `lk.chat` as the widget does, and reads the agent's replies on
`lk.transcription`. The LLM stand-in looks up the order on the real MCP server,
records the email and, on goodbye, ends the call.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.e2e.participant import User
from testkit.e2e.stack import no_voice_env, run_stack
from testkit.support_call import support_script
from testkit.waiting import wait_until

pytestmark = pytest.mark.e2e


async def test_a_text_only_session_works_with_no_voice_service(tmp_path: Path) -> None:
    async with run_stack(
        tmp_path, voice_url=None, script=support_script, transcripts=[], worker_env=no_voice_env(tmp_path)
    ) as stack:
        started = await stack.start_session(mode="text", metadata={"user_id": "u-42", "user_name": "Ada"})
        session_id, room = started["session_id"], started["room_name"]
        assert started["mode"] == "text"

        user = await User(started["livekit_url"], started["token"]).join()
        try:
            await wait_until(lambda: user.agent is not None, 60, "the agent to join the room")
            await wait_until(
                lambda: any("Sam from support" in t for t in user.spoken("agent")),
                30,
                "the greeting, as text",
            )
            await wait_until(
                lambda: user.agent and user.agent.attributes.get("lk.agent.state") == "listening",
                30,
                "the agent to wait for the user",
            )

            await user.send_text("Where is my order A123?")
            await wait_until(lambda: stack.orders.calls, 60, "the MCP tool call")
            await wait_until(lambda: user.form, 30, "the form answer on oshara.form")
            await wait_until(
                lambda: any("shipped yesterday" in t for t in user.spoken("agent")), 30, "the reply, as text"
            )
            await wait_until(
                lambda: (
                    len(stack.openai.requests) >= 3
                    and user.agent
                    and user.agent.attributes.get("lk.agent.state") == "listening"
                ),
                30,
                "the reply to settle",
            )
            # no audio either way: the agent published no track, and nothing reached an STT
            assert user.agent_audio_tracks() == 0
            await user.send_text("Thanks, that's all. Goodbye.")
            await wait_until(user.disconnected.is_set, 60, "the agent to close the room")
            assert user.heard.frames == 0
        finally:
            await user.leave()

        assert stack.deepgram.connections == []
        await wait_until(_status(stack, session_id, "ended"), 30, "the session to end")
        await wait_until(_has_event(stack, session_id, "session_ended"), 30, "the worker's last reports")
        record = await stack.session(session_id)
        assert (record["status"], record["end_reason"]) == ("ended", "agent:the user said goodbye")
        assert record["config"]["mode"] == "text"

        events = await stack.events(session_id)
        lines = [(e["role"], e["source"], e["text"]) for e in events if e["type"] == "transcript"]
        assert ("user", "text", "Where is my order A123?") in lines
        assert ("user", "text", "Thanks, that's all. Goodbye.") in lines
        assert any(role == "agent" and "shipped yesterday" in text for role, _, text in lines)
        assert {source for _, source, _ in lines} == {"text"}
        assert not [e for e in events if e["type"] == "error"], [e for e in events if e["type"] == "error"]
        ended = next(e for e in events if e["type"] == "session_ended")
        assert ended["usage"]["tts_characters"] == 0 and ended["usage"]["audio_seconds_out"] == 0
        assert ended["usage"]["llm_completion_tokens"] > 0
        (call,) = stack.orders.calls
        assert (call["order_id"], call["customer_id"]) == ("A123", "u-42")
        assert room not in await stack.room_names()

        worker_log = stack.workers[0].log()
        assert "voice service on" not in worker_log  # no embedded service was started
        assert "Traceback" not in worker_log


def _status(stack, session_id: str, status: str):
    async def check() -> bool:
        return (await stack.session(session_id))["status"] == status

    return check


def _has_event(stack, session_id: str, kind: str):
    async def check() -> bool:
        return bool(await stack.events(session_id, kind))

    return check
