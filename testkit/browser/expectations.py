"""What the browser tests expect to see: the widget's words and the console errors a scenario causes."""

from __future__ import annotations

import re

from .browser import failed_load
from .servers import Stack

LAUNCHER = "Start a voice call: Talk to us"
VOICE_SERVER_MESSAGE = "Can't reach the voice server. Check your internet connection and try again."


def websocket_failure(stack: Stack) -> str:
    """Chromium's console error for the refused LiveKit signalling websocket."""
    ws = re.escape(stack.voice_server.url.replace("http://", "ws://"))
    return rf"^WebSocket connection to '{ws}/rtc(/v1)?\?access_token=[^']+' failed"


def voice_server_failures(stack: Stack) -> list[str]:
    """The console errors of a refused LiveKit connection: the websocket, then /rtc/validate."""
    return [
        websocket_failure(stack),
        rf"^Failed to load resource: the server responded with a status of 503 .* @ "
        rf"{re.escape(stack.voice_server.url)}/rtc(/v1)?/validate\?",
    ]


def session_error(stack: Stack, status: int) -> str:
    """Chromium's console error for an HTTP error answer of POST /v1/sessions."""
    return failed_load(f"{stack.token_server}/v1/sessions", status)
