"""An OpenAI client whose chat completions skip the SDK's request conversion.

`AsyncCompletions.create()` walks the whole request (every message of the chat
context, every tool schema) against the SDK's TypedDict annotations before sending
it (`openai._utils._transform.async_maybe_transform`): about 13 ms of CPU on the
job's event loop per request, on the path from the user's last word to the reply
(bench.voice_to_voice, bench.turns). For chat completions that walk changes nothing
but dropping omitted arguments: none of the request's parameter types renames a key
or formats a value (no `PropertyInfo` in `openai.types.chat` params or
`openai.types.shared_params`). livekit's OpenAI plugin builds the messages and tool
schemas as plain JSON-ready dicts, so the request is sent as it is.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import openai
from livekit.plugins import openai as lk_openai
from openai._base_client import make_request_options
from openai.resources.chat import AsyncChat, AsyncCompletions
from openai.types.chat import ChatCompletion, ChatCompletionChunk

_OPTIONS = ("extra_headers", "extra_query", "extra_body", "timeout")


class _Completions(AsyncCompletions):
    async def create(self, **params: Any) -> Any:  # type: ignore[override]
        options = {k: params.pop(k) for k in _OPTIONS if k in params}
        body = {k: v for k, v in params.items() if not isinstance(v, openai.Omit | openai.NotGiven)}
        return await self._post(
            "/chat/completions",
            body=body,
            options=make_request_options(**options, security={"bearer_auth": True}),
            cast_to=ChatCompletion,
            stream=bool(body.get("stream")),
            stream_cls=openai.AsyncStream[ChatCompletionChunk],
        )


class _Chat(AsyncChat):
    @cached_property
    def completions(self) -> AsyncCompletions:
        return _Completions(self._client)


class DirectClient(openai.AsyncOpenAI):
    """`openai.AsyncOpenAI` whose `chat.completions.create()` sends the request unconverted."""

    @cached_property
    def chat(self) -> AsyncChat:  # type: ignore[override]
        """Chat resources whose completions skip the conversion."""
        return _Chat(self)


class LLM(lk_openai.LLM):
    """livekit's OpenAI LLM on a `DirectClient` of its own, closed with it."""

    def __init__(self, *, api_key: str, base_url: str | None = None, **kwargs: Any) -> None:
        # no retries in the SDK: livekit retries per its connect options, as with its own client
        self._direct = DirectClient(api_key=api_key, base_url=base_url, max_retries=0)
        super().__init__(client=self._direct, **kwargs)

    async def aclose(self) -> None:
        """Close the LLM and its client (livekit closes only a client it made itself)."""
        await super().aclose()
        await self._direct.close()
