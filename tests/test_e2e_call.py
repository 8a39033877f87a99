"""A whole call through a real livekit-server, with a Python participant as the user.

Everything runs inside the test run's network namespace (scripts/netns.sh): the real
server dispatches the job to a real `python -m agent start` process; the user hears
the rendered greeting over WebRTC, speaks espeak-ng sentences into a microphone
track, and the Deepgram stand-in hears them after the SFU (Opus, jitter buffer,
resampling). The LLM stand-in calls an MCP tool and records a form answer; the real
MCP server checks the merged headers and the metadata-bound argument; `end_call`
closes the room, and LiveKit's own signed webhooks end the session and free its slot.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from testkit.e2e.participant import User
from testkit.e2e.stack import WEBHOOK_SECRET, run_stack
from testkit.support_call import TRANSCRIPTS, support_script
from testkit.waiting import wait_until

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "e2e"

pytestmark = pytest.mark.e2e


def test_generated_config_keeps_every_address_on_this_machine(tmp_path: Path) -> None:
    """The run's livekit config names only the namespace's own private addresses, and a STUN server there."""
    from dev.livekit_server import LiveKitConfig
    from testkit.e2e.stack import ADDRESSES

    livekit_ip = (ADDRESSES or ["10.213.7.1"])[0]
    config = LiveKitConfig.with_free_ports(livekit_ip, api_key="k", api_secret="s" * 32, webhook_urls=[])
    path = config.write(tmp_path / "livekit.yaml")
    written = yaml.safe_load(path.read_text())
    text = path.read_text()
    assert written["rtc"]["use_external_ip"] is False
    assert written["rtc"]["node_ip"] == livekit_ip
    assert written["rtc"]["stun_servers"] == [f"{livekit_ip}:{config.turn_udp_port}"]
    assert "google" not in text and "stun.l." not in text

    def addresses(value: Any) -> list[str]:
        if isinstance(value, dict):
            return [a for v in value.values() for a in addresses(v)]
        if isinstance(value, list):
            return [a for v in value for a in addresses(v)]
        host = str(value).rsplit(":", 1)[0] if str(value).count(":") == 1 else str(value)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return []
        return [host]

    found = addresses(written)
    assert found, "the config names no address at all"
    assert all(not ipaddress.ip_address(a).is_global for a in found), found


async def test_a_whole_call_through_the_real_server(tmp_path: Path, voice_service) -> None:
    async with run_stack(
        tmp_path, voice_url=voice_service.url, script=support_script, transcripts=TRANSCRIPTS
    ) as stack:
        # 1. the session, with metadata, MCP headers and a greeting template
        started = await stack.start_session(
            metadata={"user_id": "u-42", "user_name": "Ada"},
            mcp_headers={"X-Tenant": "acme", "Authorization": "Bearer session-token"},
        )
        session_id, room = started["session_id"], started["room_name"]
        assert started["livekit_url"] == stack.livekit.config.ws_url
        assert started["greeting"] == "Hi Ada, I'm Sam from support. How can I help?"
        assert room in await stack.room_names()

        # 2. the real server dispatches the job; the user hears the rendered greeting
        user = await User(started["livekit_url"], started["token"]).join()
        try:
            await wait_until(lambda: user.agent is not None, 60, "the agent to join the room")
            await wait_until(lambda: user.heard.loud_frames >= 25, 60, "the greeting's audio")
            await wait_until(
                lambda: any("Sam from support" in t for t in user.spoken("agent")),
                30,
                "the greeting's transcript",
            )
            await wait_until(user.greeted, 30, "the agent to listen")
            assert stack.openai.requests == []  # the greeting is spoken as configured, not generated

            # 3. the user speaks through the SFU; the agent looks up the order and records the email
            await user.publish_microphone()
            await wait_until(lambda: stack.deepgram.connections, 30, "the agent to open its STT stream")
            heard_before = time.monotonic()
            await user.say("Hi, where is my order A one two three?")
            await wait_until(lambda: stack.orders.calls, 60, "the MCP tool call")
            await wait_until(lambda: user.form, 30, "the form answer on oshara.form")
            await wait_until(lambda: user.heard.loud_since(heard_before) >= 25, 60, "the spoken reply")
            await wait_until(
                lambda: any("shipped yesterday" in t for t in user.spoken("agent")),
                30,
                "the reply's transcript",
            )
            assert stack.deepgram.audio_seconds > 2.0  # the speech arrived after Opus and the SFU
            assert stack.deepgram.finals[0] == TRANSCRIPTS[0]
            # the user's own words come back as a final lk.transcription line, sent on their behalf
            await wait_until(lambda: TRANSCRIPTS[0] in user.spoken("user"), 30, "the user's transcript line")

            # 4. goodbye: end_call closes the room, and LiveKit's webhooks end the session
            await wait_until(
                lambda: len(stack.openai.requests) >= 2 and not user.disconnected.is_set(),
                5,
                "the reply to settle",
            )
            await user.say("Thanks, that is all. Goodbye.")
            await wait_until(user.disconnected.is_set, 60, "the agent to close the room")
        finally:
            await user.leave()

        await wait_until(_room_gone(stack, room), 30, "LiveKit to drop the room")
        await wait_until(_status(stack, session_id, "ended"), 30, "the session to end")
        await wait_until(_has_event(stack, session_id, "session_ended"), 30, "the worker's last reports")

        # the MCP server saw the merged headers and the metadata-bound argument
        (call,) = stack.orders.calls
        assert (call["order_id"], call["customer_id"]) == ("A123", "u-42")
        headers = call["headers"]
        assert headers["x-session-id"] == session_id
        assert headers["x-tenant"] == "acme" and headers["x-api"] == "v2"
        assert headers["authorization"] == "Bearer session-token"  # the session's header wins
        # only the accepted answer reached the user's form; the malformed one was refused
        assert [(f["field"], f["value"]) for f in user.form] == [("email", "ada@example.com")]

        # 5. the record: transcript, tool calls, form, metrics, usage, LiveKit's webhooks
        record = await stack.session(session_id)
        # the agent's reason, reported before it closed the room, not LiveKit's room_finished
        assert (record["status"], record["end_reason"]) == ("ended", "agent:the user said goodbye")
        events = await stack.events(session_id)
        kinds = [e["type"] for e in events]
        for kind in ("room_started", "participant_joined", "participant_left", "room_finished"):
            assert kind in kinds, (kind, kinds)
        lines = [(e["role"], e["text"]) for e in events if e["type"] == "transcript"]
        assert ("user", TRANSCRIPTS[0]) in lines
        assert any(role == "agent" and "Sam from support" in text for role, text in lines)
        assert any(role == "agent" and "shipped yesterday" in text for role, text in lines)
        tools = [e for e in events if e["type"] == "tool_call"]
        lookup = next(t for t in tools if t["tool"] == "lookup_order")
        assert lookup["ok"] and lookup["arguments"]["customer_id"] == "u-42"
        assert [t["ok"] for t in tools if t["tool"] == "record_answer"] == [False, True]
        assert any(t["tool"] == "end_call" for t in tools)
        metrics = [e for e in events if e["type"] == "metrics"]
        assert any(m["e2e_latency_ms"] is not None for m in metrics)
        ended = next(e for e in events if e["type"] == "session_ended")
        assert ended["reason"] == "the user said goodbye"
        assert ended["usage"]["llm_completion_tokens"] > 0 and ended["usage"]["tts_characters"] > 0
        form = await stack.get(f"/v1/sessions/{session_id}/form")
        assert {f["name"]: f["value"] for f in form["fields"]} == {"email": "ada@example.com"}

        # the slot is free again: the character allows two at a time, and two more start
        for _ in range(2):
            await stack.start_session(metadata={"user_id": "u-43", "user_name": "Bo"})

        # the post-call webhook was delivered, signed with the character's secret
        await wait_until(lambda: stack.webhooks.deliveries, 30, "the post-call webhook")
        delivery = stack.webhooks.deliveries[0]
        assert delivery["body"]["session"]["session_id"] == session_id
        assert delivery["body"]["session"]["status"] == "ended"
        assert any(line["text"] == TRANSCRIPTS[0] for line in delivery["body"]["transcript"])
        assert _signed(delivery)

        # 6. the post-call analysis of this call, by the version of the character that ran it
        async def analysed() -> Any:
            return (await stack.get(f"/v1/sessions/{session_id}/analysis"))["analysis"]

        await wait_until(analysed, 60, "the post-call analysis")
        analysis = await stack.get(f"/v1/sessions/{session_id}/analysis")
        run = analysis["analysis"]
        assert run["status"] == "succeeded", run
        assert run["character_version"] == record["character_version"] == analysis["character_version"]
        assert run["model"] == "analysis-standin"
        result = run["result"]
        assert "A123" in result["summary"]
        fields = {f["name"]: f for f in result["fields"]}
        assert (fields["order_id"]["value"], fields["order_id"]["source"]) == ("A123", "analysis")
        # the email the form captured during the call is kept as captured
        email = fields["email"]
        assert (email["value"], email["source"], email["disagrees"]) == ("ada@example.com", "form", False)
        assert [(c["name"], c["answer"]) for c in result["success"]] == [("resolved", True)]
        assert result["succeeded"] is True
        # the analysis LLM was asked with the call's transcript, in structured output
        (asked,) = [r for r in stack.openai.requests if "response_format" in r]
        assert asked["response_format"]["type"] == "json_schema"
        assert TRANSCRIPTS[0] in json.dumps(asked["messages"])
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "analysis.json").write_text(json.dumps(analysis, indent=2) + "\n")


def _room_gone(stack, room: str):
    async def check() -> bool:
        return room not in await stack.room_names()

    return check


def _status(stack, session_id: str, status: str):
    async def check() -> bool:
        return (await stack.session(session_id))["status"] == status

    return check


def _has_event(stack, session_id: str, kind: str):
    async def check() -> bool:
        return bool(await stack.events(session_id, kind))

    return check


def _signed(delivery: dict[str, Any]) -> bool:
    """`X-Oshara-Signature: t=…,v1=HMAC-SHA256(secret, "t.body")` over the bytes received."""
    parts = dict(p.split("=", 1) for p in delivery["signature"].split(","))
    signed = parts["t"].encode() + b"." + delivery["raw"]
    expected = hmac.new(WEBHOOK_SECRET.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


async def test_a_worker_without_providers_joins_and_says_what_is_missing(tmp_path: Path) -> None:
    """A newcomer's `make dev`: no keys, no voice weights. The agent still joins and says why it cannot talk."""
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    bare = {
        "DEEPGRAM_API_KEY": "",
        "OPENAI_API_KEY": "",
        "OPENAI_BASE_URL": "",
        "CHATTERBOX_MODEL_DIR": str(no_weights),
        "CHATTERBOX_CACHE_DIR": str(no_weights),
    }
    async with run_stack(
        tmp_path, voice_url=None, script=support_script, transcripts=[], worker_env=bare
    ) as stack:
        started = await stack.start_session(metadata={"user_id": "u-42", "user_name": "Ada"})
        session_id = started["session_id"]
        await wait_until(_status(stack, session_id, "ended"), 60, "the agent to give up")
        assert (await stack.status(session_id)) == ("ended", "agent:provider not configured")
        errors = [e["message"] for e in await stack.events(session_id, "error")]
        assert any("DEEPGRAM_API_KEY" in m for m in errors), errors
        assert any("OPENAI_API_KEY" in m for m in errors), errors
        assert any("CHATTERBOX_URL" in m and "python -m voice_service download" in m for m in errors), errors
        joined = [e for e in await stack.events(session_id, "participant_joined")]
        assert any(e["participant"]["kind"] == "AGENT" for e in joined)  # it did join the room
        # and it closed the room, so a user is not left waiting in silence
        await wait_until(_room_gone(stack, started["room_name"]), 30, "the room to close")
        worker_log = stack.workers[0].log()
        assert "DEEPGRAM_API_KEY" in worker_log and "python -m voice_service download" in worker_log
        assert "Traceback" not in worker_log
