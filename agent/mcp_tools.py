"""The character's MCP servers as LLM tools, with per-session headers and hidden arguments.

Headers sent to each server, later entries winning:

1. the character's headers, `${ENV_NAME}` resolved from the worker's environment;
2. the session's `mcp_headers` (dispatch metadata, never in the public room metadata);
3. `X-Session-Id` and `X-Character`, set by the worker.

A header template naming an environment variable the worker does not have makes the
whole server unusable for the session: it is skipped and an error is reported, since
calling it without its credentials would fail anyway or, worse, reach it unauthenticated.

Arguments listed in a server's `metadata_arguments` are removed from the schema the
LLM sees and filled from the session metadata on every call, whatever the LLM sent.
Tool failures and unreachable servers never end the conversation: the LLM gets a
plain sentence it can relay, and a `ToolCall(ok=False)` and an `Error` are reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from livekit.agents import llm
from livekit.agents.llm.mcp import MCPServerHTTP

from contract.env_refs import MissingEnvironment, missing_env_refs, resolve_env_refs
from contract.events import Error, ToolCall
from contract.session_config import DispatchConfig, PublicMCPServer, SessionConfig
from contract.templates import lookup_metadata

from .reporting import Report

logger = logging.getLogger("oshara.agent.mcp")

_CONNECT_TIMEOUT = 10.0


def resolve_header_templates(templates: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """Header values with every `${NAME}` replaced from `environ`.

    Raises:
        MissingEnvironment: some referenced variable is unset or empty (all of them named).
    """
    if missing := missing_env_refs(templates.values(), environ):
        raise MissingEnvironment(missing)
    return {k: resolve_env_refs(v, environ) for k, v in templates.items()}


def merged_headers(
    server: PublicMCPServer,
    config: SessionConfig,
    dispatch: DispatchConfig,
    environ: Mapping[str, str],
) -> dict[str, str]:
    """The headers sent to `server` in this session (see the module docstring).

    Raises:
        MissingEnvironment: a character header needs an unset environment variable.
    """
    headers = resolve_header_templates(dispatch.mcp_server_headers.get(server.name, {}), environ)
    # header names are case-insensitive: a later source replaces an earlier one
    for extra in (
        dispatch.mcp_headers,
        {"X-Session-Id": dispatch.session_id, "X-Character": config.character},
    ):
        for name, value in extra.items():
            for existing in [k for k in headers if k.lower() == name.lower()]:
                del headers[existing]
            headers[name] = value
    return headers


def hide_arguments(schema: dict[str, Any], hidden: set[str]) -> dict[str, Any]:
    """A copy of a JSON schema for tool parameters without the `hidden` properties."""
    out = copy.deepcopy(schema)
    props = out.get("properties")
    if isinstance(props, dict):
        for name in hidden:
            props.pop(name, None)
    if isinstance(out.get("required"), list):
        out["required"] = [r for r in out["required"] if r not in hidden]
    return out


@dataclass
class MCPTools:
    """The tools of every reachable MCP server of a session, and the servers to close."""

    tools: list[llm.Tool] = field(default_factory=list)
    servers: list[MCPServerHTTP] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)

    def notes(self) -> list[str]:
        """Lines for the instructions about servers that could not be reached."""
        return [
            f"The '{name}' service is unavailable right now. If the user needs it, "
            "say so plainly and offer to help in another way."
            for name in self.unavailable
        ]

    async def aclose(self) -> None:
        """Close every MCP connection."""
        for server in self.servers:
            try:
                await server.aclose()
            except Exception:
                logger.warning("closing an MCP connection failed", exc_info=True)


async def connect_mcp_tools(
    config: SessionConfig,
    dispatch: DispatchConfig,
    *,
    report: Report,
    environ: Mapping[str, str],
    reserved_names: set[str] | None = None,
) -> MCPTools:
    """Connect to each MCP server of the session and wrap its tools for the LLM."""
    result = MCPTools()
    taken = set(reserved_names or ())
    connected = await asyncio.gather(
        *(_connect_one(s, config, dispatch, report=report, environ=environ) for s in config.mcp_servers)
    )
    for server_cfg, (server, raw_tools) in zip(config.mcp_servers, connected, strict=True):
        if server is None:
            result.unavailable.append(server_cfg.name)
            continue
        result.servers.append(server)
        for tool in raw_tools:
            name = tool.info.name
            if name in taken:
                logger.warning(
                    "MCP tool name already taken, skipped", extra={"server": server_cfg.name, "tool": name}
                )
                continue
            taken.add(name)
            result.tools.append(_wrap_tool(tool, server_cfg, config.metadata, report))
    return result


async def _connect_one(
    server_cfg: PublicMCPServer,
    config: SessionConfig,
    dispatch: DispatchConfig,
    *,
    report: Report,
    environ: Mapping[str, str],
) -> tuple[MCPServerHTTP | None, list[llm.RawFunctionTool]]:
    try:
        headers = merged_headers(server_cfg, config, dispatch, environ)
    except MissingEnvironment as exc:
        logger.error("MCP server skipped: missing environment", extra={"server": server_cfg.name})
        report(Error(source="mcp", message=f"MCP server '{server_cfg.name}' skipped: {exc}"))
        return None, []
    server = MCPServerHTTP(
        str(server_cfg.url),
        transport_type="streamable_http",
        allowed_tools=server_cfg.allowed_tools,
        headers=headers,
        timeout=min(server_cfg.timeout, _CONNECT_TIMEOUT),
        # also bounds each tool call
        client_session_timeout_seconds=server_cfg.timeout,
    )
    try:
        async with asyncio.timeout(_CONNECT_TIMEOUT):
            await server.initialize()
            tools = await server.list_tools()
    except Exception as exc:
        logger.warning(
            "MCP server unreachable", extra={"server": server_cfg.name, "error": type(exc).__name__}
        )
        report(
            Error(
                source="mcp",
                message=f"MCP server '{server_cfg.name}' unreachable: {type(exc).__name__}",
            )
        )
        with contextlib.suppress(Exception):  # already reported as unreachable
            await server.aclose()
        return None, []
    if not tools:
        report(
            Error(source="mcp", message=f"MCP server '{server_cfg.name}' offers none of the allowed tools")
        )
    return server, [t for t in tools if isinstance(t, llm.RawFunctionTool)]


def _wrap_tool(
    tool: llm.RawFunctionTool, server_cfg: PublicMCPServer, metadata: Mapping[str, Any], report: Report
) -> llm.RawFunctionTool:
    info = tool.info
    params = info.raw_schema.get("parameters") or {"type": "object", "properties": {}}
    accepted = set((params.get("properties") or {}).keys())
    filled = {arg: key for arg, key in server_cfg.metadata_arguments.items() if arg in accepted}
    schema = {**info.raw_schema, "parameters": hide_arguments(params, set(filled))}
    schema.pop("meta", None)
    name = info.name

    async def call_mcp_tool(raw_arguments: dict[str, Any]) -> Any:
        arguments = {k: v for k, v in raw_arguments.items() if k not in filled}
        for arg, key in filled.items():
            value = lookup_metadata(metadata, key)
            if value is None:
                message = f"The session has no '{key}', which the {name} tool needs."
                _report_failure(report, server_cfg.name, name, 0.0, message, arguments)
                return f"The {name} tool cannot be used in this session: {message}"
            arguments[arg] = value
        started = time.monotonic()
        try:
            result = await tool(raw_arguments=arguments)
        except llm.ToolError as exc:
            elapsed = (time.monotonic() - started) * 1000
            _report_failure(report, server_cfg.name, name, elapsed, exc.message, arguments)
            return f"The {name} tool failed: {exc.message}"
        except Exception as exc:
            elapsed = (time.monotonic() - started) * 1000
            reason = (
                "it did not answer in time" if isinstance(exc, TimeoutError) else "the service is unavailable"
            )
            _report_failure(report, server_cfg.name, name, elapsed, f"{type(exc).__name__}: {exc}", arguments)
            return f"The {name} tool failed: {reason}. Tell the user and carry on."
        report(
            ToolCall(
                server=server_cfg.name,
                tool=name,
                duration_ms=(time.monotonic() - started) * 1000,
                ok=True,
                arguments=arguments,
            )
        )
        return result

    return llm.function_tool(call_mcp_tool, raw_schema=schema)


def _report_failure(
    report: Report, server: str, tool: str, elapsed_ms: float, message: str, arguments: dict[str, Any]
) -> None:
    logger.warning("MCP tool call failed", extra={"server": server, "tool": tool})
    report(
        ToolCall(
            server=server,
            tool=tool,
            duration_ms=max(elapsed_ms, 0.0),
            ok=False,
            error=message[:2000],
            arguments=arguments,
        )
    )
    report(Error(source="mcp", message=f"{server}.{tool}: {message}"[:2000]))
