"""Typed turns: what the user writes on the `lk.chat` text-stream topic, taken as their turn.

livekit-agents' RoomIO reads text streams on `lk.chat` from the participant it is linked
to and hands each one to a text-input callback. `take_typed_turn` is ours: it caps the
turn at `MAX_TYPED_CHARS`, marks the user's message as typed so the session log can say
`source: text`, and asks for a reply the way livekit's default callback does. The reply
is spoken in a voice session and written in a text-only one.
"""

from __future__ import annotations

import logging

from livekit.agents import llm
from livekit.agents.voice import AgentSession
from livekit.agents.voice.room_io import TextInputEvent

logger = logging.getLogger("oshara.agent.typed_turns")

MAX_TYPED_CHARS = 2_000
"""The longest typed turn taken whole (the widget refuses longer); the rest is cut off."""

TYPED_KEY = "oshara_typed"
"""Marks a typed user message in `ChatMessage.extra`. The chat-completions format sends
only the providers' own keys of `extra`, so the LLM never sees it."""


def typed_message(text: str) -> llm.ChatMessage:
    """The user's chat message for a typed turn, marked as typed."""
    return llm.ChatMessage(role="user", content=[text], extra={TYPED_KEY: True})


def is_typed(message: llm.ChatMessage) -> bool:
    """Whether `message` is a turn the user typed (rather than spoke)."""
    return bool(message.extra.get(TYPED_KEY))


def limit_typed_text(text: str) -> str:
    """`text` without surrounding whitespace, cut to `MAX_TYPED_CHARS` (logged when it is)."""
    text = text.strip()
    if len(text) > MAX_TYPED_CHARS:
        # the length only: a transcript never goes into a log line
        logger.warning("typed turn too long; cut off", extra={"chars": len(text), "limit": MAX_TYPED_CHARS})
        text = text[:MAX_TYPED_CHARS]
    return text


async def take_typed_turn(session: AgentSession, ev: TextInputEvent) -> None:
    """RoomIO's text-input callback: interrupt the agent and answer the typed turn."""
    text = limit_typed_text(ev.text)
    if not text:
        return
    # As livekit's default callback does: hold the user's turn while the agent is
    # interrupted, so nothing else starts a reply in between (`_claim_user_turn` is
    # documented for custom text-input callbacks).
    async with session._claim_user_turn():
        await session.interrupt()
        session.generate_reply(user_input=typed_message(text))
