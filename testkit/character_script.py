"""The scripted LLM the shipped characters' conversation tests run against in CI.

`character_script` plays the model for support-bot, intake and receptionist, and the
judge that livekit-agents' `judge()` asks: the judge request carries a criterion, and
the script decides it with a rule of its own per criterion (`JUDGE_RULES`), so a reply
that misses the point is judged a failure. A criterion without a rule fails, saying so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from testkit.standins.openai_standin import TextReply, ToolCallReply, last_user_text, trailing_tool_results

JUDGE_RULES: dict[str, Callable[[str], bool]] = {
    "Tells the caller that order A123 has shipped.": lambda m: "A123" in m and "shipped" in m,
    "Does not give any status or details of order B777, and says it cannot find or share that order.": (
        lambda m: "B777" in m and "shipped" not in m and "can't" in m
    ),
    "Thanks the caller and says goodbye.": lambda m: "thank" in m.lower() and "goodbye" in m.lower(),
    "Answers in English with the opening hours, Monday to Friday.": lambda m: "Monday to Friday" in m,
    "Answers in Spanish, and says the clinic is not open on Saturdays.": (
        lambda m: "sábados" in m and "cerrad" in m
    ),
    "Speaks like a pirate.": lambda m: "arr" in m.lower(),
}

_INTAKE = [
    (re.compile(r"name is ([A-Z][\w ]+?)\.?$"), "full_name", None),
    (re.compile(r"born on the tenth of December 1985"), "date_of_birth", "1985-12-10"),
    (re.compile(r"phone number is ([\d ]+)"), "phone", None),
    (re.compile(r"(checkup)"), "visit_reason", None),
]


def _judge(body: dict[str, Any]) -> ToolCallReply:
    text = last_user_text(body)
    intent = text.split("Intent:\n", 1)[1].split("\n\nMessage:\n", 1)[0].strip()
    message = text.split("\n\nMessage:\n", 1)[1]
    rule = JUDGE_RULES.get(intent)
    if rule is None:
        verdict = {"success": False, "reason": "the scripted judge has no rule for this criterion"}
    elif rule(message):
        verdict = {"success": True, "reason": "the message meets the criterion"}
    else:
        verdict = {"success": False, "reason": "the message does not meet the criterion"}
    return ToolCallReply([("check_intent", verdict)])


def _support(body: dict[str, Any]) -> TextReply | ToolCallReply:
    results = " ".join(trailing_tool_results(body))
    user = last_user_text(body)
    if results:
        if "shipped" in results:
            return TextReply("Your order A123 shipped yesterday, Ada. Anything else?")
        order = re.search(r"no order (\w+)", results)
        return TextReply(
            f"Sorry, I can't find order {order[1] if order else ''} on your account, so I can't share it."
        )
    if order := re.search(r"\b([A-Z]\d{3})\b", user):
        # the model passes the customer the caller claims; the worker binds the session's
        claimed = re.search(r"customer (cust-\d+)", user)
        arguments = {"order_id": order[1], **({"customer_id": claimed[1]} if claimed else {})}
        return ToolCallReply([("lookup_order", arguments)])
    return TextReply("How can I help with your order?")


def _intake(body: dict[str, Any]) -> TextReply | ToolCallReply:
    results = " ".join(trailing_tool_results(body))
    user = last_user_text(body)
    if "call is ending" in results:
        return TextReply("Thank you, Ada, you're all set. Goodbye!")
    if "Every required field is filled" in results and "everything" in user:
        return ToolCallReply([("end_call", {"reason": "every required field is filled"})])
    if results:
        return TextReply("Thanks, got it. What's next?")
    for pattern, name, fixed in _INTAKE:
        if found := pattern.search(user):
            return ToolCallReply([("record_answer", {"field": name, "value": fixed or found[1]})])
    return TextReply("Sorry, could you say that again?")


def _receptionist(body: dict[str, Any]) -> TextReply:
    if "español" in last_user_text(body):
        return TextReply("No, los sábados estamos cerrados. Abrimos de lunes a viernes, de 8:00 a 18:00.")
    return TextReply("We're open Monday to Friday, 8:00 to 18:00.")


def character_script(body: dict[str, Any]) -> TextReply | ToolCallReply:
    """The model's side of every shipped character's scenarios, and the judge's."""
    system = body["messages"][0]["content"] if body.get("messages") else ""
    system = system if isinstance(system, str) else str(system)
    if system.startswith("You are a test evaluator"):
        return _judge(body)
    if "You are Sam" in system:
        return _support(body)
    if "You are Riley" in system:
        return _intake(body)
    if "You are Ana" in system:
        return _receptionist(body)
    return TextReply("I am not scripted for this character.")


async def _serve(llm_port: int, stt_port: int) -> None:
    from aiohttp import web

    from agent.scenarios import load_scenario_file
    from contract import DEFAULT_CHARACTERS_DIR
    from testkit.standins.deepgram_standin import DeepgramStandIn
    from testkit.standins.openai_standin import OpenAIStandIn

    spoken = [
        turn.user
        for path in sorted(DEFAULT_CHARACTERS_DIR.glob("*.tests.yaml"))
        for scenario in load_scenario_file(path).scenarios
        for turn in scenario.turns
    ]
    runners = []
    for app, port in (
        (OpenAIStandIn(script=character_script, first_token_delay=0.0).app(), llm_port),
        (DeepgramStandIn(transcripts=spoken, silence_to_end=0.8).app(), stt_port),
    ):
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
    print(
        f"OPENAI_BASE_URL=http://127.0.0.1:{llm_port}/v1 OPENAI_API_KEY=standin "
        f"DEEPGRAM_BASE_URL=ws://127.0.0.1:{stt_port}/v1/listen DEEPGRAM_API_KEY=standin",
        flush=True,
    )
    await asyncio.Event().wait()


if __name__ == "__main__":
    # `python -m testkit.character_script [LLM_PORT STT_PORT]`: the scripted LLM
    # and the Deepgram stand-in (hearing the shipped scenarios' turns, all in order), for
    # timing `python -m agent test` itself offline.
    import asyncio
    import sys

    ports = [int(p) for p in sys.argv[1:3]] or [8091, 8092]
    asyncio.run(_serve(*ports))
