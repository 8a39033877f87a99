"""A real MCP server (the `mcp` package's MCPServer, streamable HTTP) on loopback.

Its `lookup_order` tool records the headers and arguments of every call, so a
test can assert what the worker sent; `broken_tool` always fails. Given `orders`
(order id -> owning customer), it answers only about the caller's own orders, as a
real orders service would; `orders_standin` serves that one for conversation tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from dev.livekit_server import free_port as dev_free_port


@dataclass
class OrdersMCP:
    """What the orders server saw."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    orders: dict[str, str] = field(default_factory=dict)
    """Order id -> the customer it belongs to; empty: every order is the caller's."""

    def build(self) -> MCPServer:
        """The MCP server with its tools."""
        server = MCPServer("orders")

        @server.tool()
        async def lookup_order(order_id: str, customer_id: str, ctx: Context) -> str:
            """Look up the status of one of the customer's orders."""
            headers = {k.lower(): v for k, v in (ctx.headers or {}).items()}
            self.calls.append(
                {
                    "tool": "lookup_order",
                    "order_id": order_id,
                    "customer_id": customer_id,
                    "headers": headers,
                }
            )
            if self.orders and self.orders.get(order_id.strip().upper()) != customer_id:
                raise ToolError(f"customer {customer_id} has no order {order_id}")
            return f"Order {order_id} for customer {customer_id}: shipped yesterday."

        @server.tool()
        async def broken_tool(reason: str) -> str:
            """A tool that always fails."""
            raise ToolError(f"the orders database is down ({reason})")

        @server.tool()
        async def hidden_tool() -> str:
            """A tool the character does not allow."""
            return "should never be listed"

        return server


STANDIN_ORDERS = {"A123": "cust-42", "B777": "cust-99"}
"""The orders the conversation-test stand-in knows (characters/support-bot.tests.yaml)."""


def orders_standin() -> contextlib.AbstractAsyncContextManager[str]:
    """The orders MCP server for `python -m agent test`: A123 is cust-42's, B777 cust-99's."""
    return serve_mcp(OrdersMCP(orders=dict(STANDIN_ORDERS)).build())


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    return dev_free_port("127.0.0.1")


@contextlib.asynccontextmanager
async def serve_mcp(
    server: MCPServer, port: int | None = None, *, wrap: Callable[[Any], Any] | None = None
) -> AsyncIterator[str]:
    """Serve `server` over streamable HTTP on 127.0.0.1; yields its `/mcp` URL.

    `wrap`, when given, wraps the ASGI app (the benchmark times requests with it).
    """
    port = port or free_port()
    app = server.streamable_http_app(streamable_http_path="/mcp")
    if wrap is not None:
        app = wrap(app)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    uv = uvicorn.Server(config)
    task = asyncio.create_task(uv.serve())
    while not uv.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        uv.should_exit = True
        await task
