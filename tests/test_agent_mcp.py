"""MCP tools against a real MCP server on loopback: headers, hidden arguments, failures."""

from __future__ import annotations

import json

import pytest

from agent.mcp_tools import connect_mcp_tools
from contract.events import SessionEvent
from contract.session_config import DispatchConfig, PublicMCPServer, SessionConfig
from testkit.standins.mcp_server import OrdersMCP, free_port, serve_mcp

pytestmark = pytest.mark.integration


def config_for(
    url: str,
    *,
    allowed: list[str] | None = None,
    metadata: dict | None = None,
    unverified: dict | None = None,
) -> SessionConfig:
    return SessionConfig(
        session_id="sess_mcp",
        character="support-bot",
        character_name="Sam",
        language=None,
        system_prompt="p",
        greeting="g",
        voice_model="chatterbox-en-v1",
        metadata={"user_id": "u-7"} if metadata is None else metadata,
        unverified_metadata=unverified or {},
        mcp_servers=[
            PublicMCPServer(
                name="orders",
                url=url,
                allowed_tools=allowed or ["lookup_order", "broken_tool"],
                timeout=5,
                metadata_arguments={"customer_id": "user_id"},
            )
        ],
    )


DISPATCH = DispatchConfig(
    session_id="sess_mcp",
    mcp_headers={"X-Tenant": "acme"},
    mcp_server_headers={"orders": {"Authorization": "Bearer ${ORDERS_TOKEN}"}},
)
ENV = {"ORDERS_TOKEN": "t0ken"}


def tool_named(tools, name):
    return next(t for t in tools if t.info.name == name)


async def test_tools_are_filtered_and_hidden_arguments_filled():
    orders = OrdersMCP()
    events: list[SessionEvent] = []
    async with serve_mcp(orders.build()) as url:
        mcp = await connect_mcp_tools(config_for(url), DISPATCH, report=events.append, environ=ENV)
        try:
            names = {t.info.name for t in mcp.tools}
            assert names == {"lookup_order", "broken_tool"}  # hidden_tool is not allowed
            lookup = tool_named(mcp.tools, "lookup_order")
            params = lookup.info.raw_schema["parameters"]
            assert "customer_id" not in params["properties"]
            assert params["required"] == ["order_id"]
            result = await lookup(raw_arguments={"order_id": "B7", "customer_id": "forged"})
        finally:
            await mcp.aclose()
    assert "customer u-7" in json.loads(result)["text"]
    call = orders.calls[0]
    assert call["customer_id"] == "u-7"
    assert call["headers"]["authorization"] == "Bearer t0ken"
    assert call["headers"]["x-tenant"] == "acme"
    assert call["headers"]["x-session-id"] == "sess_mcp"
    assert call["headers"]["x-character"] == "support-bot"
    ok = [e for e in events if e.type == "tool_call"]
    assert ok[0].ok and ok[0].server == "orders" and ok[0].arguments["customer_id"] == "u-7"


async def test_a_failing_tool_returns_an_error_the_llm_can_talk_about():
    events: list[SessionEvent] = []
    async with serve_mcp(OrdersMCP().build()) as url:
        mcp = await connect_mcp_tools(config_for(url), DISPATCH, report=events.append, environ=ENV)
        try:
            text = await tool_named(mcp.tools, "broken_tool")(raw_arguments={"reason": "test"})
        finally:
            await mcp.aclose()
    assert text.startswith("The broken_tool tool failed")
    call = next(e for e in events if e.type == "tool_call")
    assert call.ok is False and call.error
    assert any(e.type == "error" and e.source == "mcp" for e in events)


async def test_a_server_that_goes_down_mid_session():
    events: list[SessionEvent] = []
    async with serve_mcp(OrdersMCP().build()) as url:
        mcp = await connect_mcp_tools(config_for(url), DISPATCH, report=events.append, environ=ENV)
    try:
        text = await tool_named(mcp.tools, "lookup_order")(raw_arguments={"order_id": "B7"})
    finally:
        await mcp.aclose()
    assert "failed" in text
    assert any(e.type == "tool_call" and not e.ok for e in events)


async def test_missing_metadata_key_is_an_error_not_a_forged_value():
    events: list[SessionEvent] = []
    async with serve_mcp(OrdersMCP().build()) as url:
        mcp = await connect_mcp_tools(
            config_for(url, metadata={}), DISPATCH, report=events.append, environ=ENV
        )
        try:
            text = await tool_named(mcp.tools, "lookup_order")(
                raw_arguments={"order_id": "B7", "customer_id": "forged"}
            )
        finally:
            await mcp.aclose()
    assert "cannot be used" in text and "user_id" in text


async def test_unverified_metadata_never_fills_a_tool_argument():
    # what a plain browser sent: the user says who they are, and nobody checked
    events: list[SessionEvent] = []
    async with serve_mcp(OrdersMCP().build()) as url:
        config = config_for(url, metadata={}, unverified={"user_id": "someone-else"})
        mcp = await connect_mcp_tools(config, DISPATCH, report=events.append, environ=ENV)
        try:
            text = await tool_named(mcp.tools, "lookup_order")(raw_arguments={"order_id": "B7"})
        finally:
            await mcp.aclose()
    assert "cannot be used" in text
    assert not any(e.type == "tool_call" and e.ok for e in events)


async def test_an_unreachable_server_is_reported_and_noted():
    events: list[SessionEvent] = []
    url = f"http://127.0.0.1:{free_port()}/mcp"
    mcp = await connect_mcp_tools(config_for(url), DISPATCH, report=events.append, environ=ENV)
    assert mcp.tools == [] and mcp.unavailable == ["orders"]
    assert "'orders' service is unavailable" in mcp.notes()[0]
    assert any(e.type == "error" and "unreachable" in e.message for e in events)


async def test_missing_environment_skips_the_server():
    events: list[SessionEvent] = []
    async with serve_mcp(OrdersMCP().build()) as url:
        mcp = await connect_mcp_tools(config_for(url), DISPATCH, report=events.append, environ={})
    assert mcp.unavailable == ["orders"]
    assert any("ORDERS_TOKEN" in e.message for e in events if e.type == "error")
