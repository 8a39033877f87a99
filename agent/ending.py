"""The `end_call` tool: say goodbye, report why the call ended, close the room.

The tool's output asks the LLM for a short goodbye. The reply is spoken on the
same speech handle as the tool call, so once that handle is done the goodbye has
played to the end; only then is the session shut down (draining its output).
The reporter sends `SessionEnded` with the reason when the session closes, and
the room is deleted through LiveKit's RoomService so the user is disconnected.
"""

from __future__ import annotations

import logging
import time

from livekit.agents import RunContext, llm

from contract.events import ToolCall

from .reporting import Report, SessionReporter

logger = logging.getLogger("oshara.agent.ending")


END_CALL_DESCRIPTION = (
    "End the call. Use it only when the user clearly says they are done, or the task is "
    "complete and the user has nothing more. Give a short reason. After calling it, say "
    "one short goodbye sentence and nothing else."
)


class EndCall:
    """The end_call tool for one session."""

    def __init__(self, *, reporter: SessionReporter, report: Report) -> None:
        self._reporter = reporter
        self._report = report
        self.requested = False

    def tool(self) -> llm.FunctionTool:
        """The `end_call(reason)` tool."""
        return llm.function_tool(self._end_call, name="end_call", description=END_CALL_DESCRIPTION)

    async def _end_call(self, ctx: RunContext, reason: str) -> str:
        """End the call.

        Args:
            ctx: The run context (not shown to the LLM).
            reason: Why the call ends, in a few words.
        """
        started = time.monotonic()
        reason = (reason or "conversation finished").strip()[:200]
        if self.requested:
            return "The call is already ending. Say nothing more."
        self.requested = True
        self._reporter.end_reason = reason
        session = ctx.session

        def _after_goodbye(_: object) -> None:
            # drain: the goodbye already played; close after anything still queued
            session.shutdown(drain=True)

        ctx.speech_handle.add_done_callback(_after_goodbye)
        self._report(
            ToolCall(
                tool="end_call",
                duration_ms=(time.monotonic() - started) * 1000,
                ok=True,
                arguments={"reason": reason},
            )
        )
        logger.info("end_call requested")
        return "The call is ending. Say one short, warm goodbye sentence now."
