"""A local stand-in for an OpenAI-compatible `/v1/chat/completions` server.

It streams Server-Sent Events the way OpenAI does (`chat.completion.chunk`
objects, tool calls split into deltas, a final usage chunk, `[DONE]`), or, for a
request without `"stream": true` (structured output: `response_format` with a
`json_schema`), answers one `chat.completion` object with its usage. What it
answers is decided by a script: a function from the request body to either a
text reply or a list of tool calls, so a test can react to the conversation
(the last user message, tool results) rather than to call order, which
preemptive generation makes unpredictable.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class ToolCallReply:
    """The model calls tools: (name, arguments) pairs."""

    calls: list[tuple[str, dict[str, Any]]]


@dataclass
class TextReply:
    """The model answers with text."""

    text: str


Script = Callable[[dict[str, Any]], TextReply | ToolCallReply]


@dataclass
class OpenAIStandIn:
    """Serves scripted chat completions and records every request."""

    script: Script
    first_token_delay: float = 0.05
    fail_next: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    auth_headers: list[str] = field(default_factory=list)

    @staticmethod
    def _completion(body: dict[str, Any], reply: TextReply | ToolCallReply) -> dict[str, Any]:
        """A whole (non-streamed) `chat.completion`."""
        if isinstance(reply, TextReply):
            message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None}
            finish, tokens = "stop", len(reply.text.split(" "))
        else:
            calls = [
                {
                    "id": f"call_{uuid.uuid4().hex[:10]}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args)},
                }
                for name, args in reply.calls
            ]
            message = {"role": "assistant", "content": None, "tool_calls": calls}
            finish, tokens = "tool_calls", 10 * len(reply.calls)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "standin"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": _usage(body, tokens),
        }

    def app(self) -> web.Application:
        """The aiohttp application serving `/v1/chat/completions`."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        return app

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.auth_headers.append(request.headers.get("Authorization", ""))
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.json_response(
                {"error": {"message": "scripted failure", "type": "server_error"}}, status=500
            )
        reply = self.script(body)
        if not body.get("stream"):
            await asyncio.sleep(self.first_token_delay)
            return web.json_response(self._completion(body, reply))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        model = body.get("model", "standin")

        async def chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> None:
            obj: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": []
                if delta is None
                else [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
                **extra,
            }
            await resp.write(f"data: {json.dumps(obj)}\n\n".encode())

        await asyncio.sleep(self.first_token_delay)
        if isinstance(reply, TextReply):
            await chunk({"role": "assistant", "content": ""})
            words = reply.text.split(" ")
            for i, word in enumerate(words):
                await chunk({"content": word if i == 0 else " " + word})
            await chunk({}, "stop")
            completion_tokens = len(words)
        else:
            await chunk({"role": "assistant", "content": None})
            for i, (name, args) in enumerate(reply.calls):
                call_id = f"call_{uuid.uuid4().hex[:10]}"
                text = json.dumps(args)
                half = len(text) // 2
                await chunk(
                    {
                        "tool_calls": [
                            {
                                "index": i,
                                "id": call_id,
                                "type": "function",
                                "function": {"name": name, "arguments": text[:half]},
                            }
                        ]
                    }
                )
                await chunk({"tool_calls": [{"index": i, "function": {"arguments": text[half:]}}]})
            await chunk({}, "tool_calls")
            completion_tokens = 10 * len(reply.calls)
        prompt_tokens = sum(len(json.dumps(m)) // 4 for m in body.get("messages", []))
        await chunk(
            None,
            usage={
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        )
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


def _usage(body: dict[str, Any], completion_tokens: int) -> dict[str, int]:
    prompt_tokens = sum(len(json.dumps(m)) // 4 for m in body.get("messages", []))
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def last_message(body: dict[str, Any]) -> dict[str, Any]:
    """The last message of a chat-completions request."""
    return body["messages"][-1]


def trailing_tool_results(body: dict[str, Any]) -> list[str]:
    """The contents of the tool messages at the end of the request (the last tool round)."""
    out: list[str] = []
    for message in reversed(body["messages"]):
        if message["role"] != "tool":
            break
        content = message["content"]
        out.append(content if isinstance(content, str) else json.dumps(content))
    return out[::-1]


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the last user message."""
    for message in reversed(body["messages"]):
        if message["role"] == "user":
            content = message["content"]
            if isinstance(content, str):
                return content
            return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""
