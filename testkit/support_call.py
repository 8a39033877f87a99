"""The support call both whole-pipeline tests hold: the character, and the LLM's side of it.

Sam greets the user by name; asked about an order, the model looks it up on the
orders MCP server (trying to forge the metadata-bound `customer_id`, which the worker
overrides) and records the user's email, first wrongly, then rightly; on goodbye it
ends the call. The in-process conversation (tests/test_agent_conversation.py) and the
call through the real livekit-server (tests/test_e2e_call.py) run the same script.
"""

from __future__ import annotations

import json
from typing import Any

from testkit.standins.openai_standin import TextReply, ToolCallReply, last_user_text, trailing_tool_results

TRANSCRIPTS = ["Where is my order A123?", "Thanks, that's all. Goodbye."]
"""What the Deepgram stand-in hears the user say, utterance by utterance."""


def analysis_reply(body: dict[str, Any]) -> TextReply:
    """The post-call analysis of the support call, shaped by the JSON schema the request carries."""
    props = body["response_format"]["json_schema"]["schema"]["properties"]
    out: dict[str, Any] = {}
    if "summary" in props:
        out["summary"] = "Ada asked where order A123 was. Sam looked it up: it shipped yesterday."
    if "fields" in props:
        found = {"order_id": "A123", "email": "ada@example.com"}
        out["fields"] = {name: found.get(name) for name in props["fields"]["properties"]}
    if "success" in props:
        out["success"] = {
            name: {"answer": True, "reason": "Ada learned that her order shipped yesterday."}
            for name in props["success"]["properties"]
        }
    return TextReply(json.dumps(out))


def support_script(body: dict[str, Any]) -> TextReply | ToolCallReply:
    """The LLM's side of the conversation, decided by the last user turn and tool results.

    A request with a `response_format` is the token server's post-call analysis.
    """
    if "response_format" in body:
        return analysis_reply(body)
    results = " ".join(trailing_tool_results(body))
    if results:
        if "call is ending" in results:
            return TextReply("Goodbye Ada, have a lovely day!")
        if "Not recorded" in results:
            return ToolCallReply([("record_answer", {"field": "email", "value": "ada@example.com"})])
        if "Recorded email" in results:
            return TextReply("Your order A123 shipped yesterday. Anything else?")
        return TextReply("Done.")
    user = last_user_text(body).lower()
    if "order" in user:
        return ToolCallReply(
            [
                # the model tries to forge the hidden argument; the worker must override it
                ("lookup_order", {"order_id": "A123", "customer_id": "forged-999"}),
                ("record_answer", {"field": "email", "value": "ada at example"}),
            ]
        )
    if "bye" in user:
        return ToolCallReply([("end_call", {"reason": "the user said goodbye"})])
    return TextReply("Could you say that again?")


def support_character(mcp_url: str, *, origin: str = "http://localhost:*", extra: str = "") -> str:
    """The character's YAML, its MCP server at `mcp_url`; `extra` adds top-level keys."""
    return f"""
slug: support
name: Sam
language: en-US
system_prompt: You are Sam, a support agent.
greeting: "Hi {{{{user_name}}}}, I'm Sam from support. How can I help?"
allowed_origins: ["{origin}"]
llm: {{model: gpt-4o-mini, temperature: 0.2}}
{extra}
mcp_servers:
  - name: orders
    url: {mcp_url}
    headers:
      Authorization: Bearer ${{ORDERS_MCP_TOKEN}}
      X-Api: v2
    allowed_tools: [lookup_order]
    timeout: 10
    metadata_arguments:
      customer_id: user_id
form:
  fields:
    - {{name: email, type: email, required: true}}
"""
