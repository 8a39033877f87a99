"""agent.openai_client: the request it sends without the SDK's conversion is the one the SDK sends."""

from __future__ import annotations

from typing import Any

import pytest
from livekit.agents import llm
from livekit.plugins import openai as lk_openai

from agent.openai_client import LLM
from testkit.standins.openai_standin import OpenAIStandIn, TextReply, ToolCallReply

pytestmark = pytest.mark.integration


@llm.function_tool
async def lookup_order(order_id: str, include_history: bool = False) -> str:
    """Look up the status of an order.

    Args:
        order_id: The order's id, as the customer says it.
        include_history: Whether to add every past status.
    """
    return f"Order {order_id}: shipped"


def _script(body: dict[str, Any]) -> TextReply | ToolCallReply:
    if body["messages"][-1]["role"] == "tool":
        return TextReply("It shipped yesterday.")
    return ToolCallReply([("lookup_order", {"order_id": "A123"})])


def _context() -> llm.ChatContext:
    ctx = llm.ChatContext()
    ctx.add_message(role="system", content="You are Sam, a support agent.")
    ctx.add_message(role="assistant", content="Hi, how can I help?")
    ctx.add_message(role="user", content="Where is order A123?")
    return ctx


async def _ask(model: llm.LLM) -> tuple[str, list[llm.FunctionToolCall]]:
    text, calls = "", []
    async with model.chat(chat_ctx=_context(), tools=[lookup_order]) as stream:
        async for chunk in stream:
            if chunk.delta is not None:
                text += chunk.delta.content or ""
                calls += chunk.delta.tool_calls or []
    return text, calls


async def test_the_request_and_the_streamed_answer_match_the_sdks(aiohttp_server) -> None:
    standin = OpenAIStandIn(script=_script, first_token_delay=0.0)
    server = await aiohttp_server(standin.app())
    base_url = str(server.make_url("/v1"))
    kwargs = {"model": "gpt-4o-mini", "api_key": "oa-test-key", "base_url": base_url, "temperature": 0.2}

    sdk = lk_openai.LLM(**kwargs)  # type: ignore[arg-type]
    direct = LLM(**kwargs)  # type: ignore[arg-type]
    try:
        by_sdk = await _ask(sdk)
        by_direct = await _ask(direct)
    finally:
        await sdk.aclose()
        await direct.aclose()

    first, second = standin.requests
    assert second == first  # the same JSON body, omitted arguments dropped as the SDK drops them
    assert first["tools"][0]["function"]["name"] == "lookup_order"
    assert standin.auth_headers == ["Bearer oa-test-key"] * 2
    (call,) = by_direct[1]
    assert (call.name, call.arguments) == ("lookup_order", '{"order_id": "A123"}')
    assert [(c.name, c.arguments) for c in by_sdk[1]] == [(call.name, call.arguments)]


async def test_closing_the_llm_closes_its_client() -> None:
    model = LLM(model="gpt-4o-mini", api_key="k", base_url="http://127.0.0.1:9/v1")
    await model.aclose()
    assert model._direct.is_closed()
