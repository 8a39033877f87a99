"""`python -m agent test`: run characters' conversation tests and report each turn.

Each scenario (agent/scenarios.py) runs in a session built the way the worker builds
one (`agent.conversation.start_conversation`): the character's prompt and session
metadata, its MCP tools (its own servers, or the stand-ins the scenario names), the
form and `end_call`, with the character's LLM. A user turn is
`AgentSession.run(user_input=...)`, livekit-agents' own testing entry point; the
checks read its `RunResult` (`expect.contains_function_call`, the assistant
messages, `judge` for a plain-language criterion) and what the session reported
(the arguments a tool really received, form answers, why the call ended).

With `--audio` each user turn is spoken instead: espeak-ng speech goes into the
session's microphone in real time, through Silero VAD, the STT, the local end-of-turn
model, the LLM and the TTS, as in a call (a RunResult per turn is filled from the
session's events). The microphone and espeak-ng helpers are the repository's
(testkit/audio), so `--audio` runs from a checkout with espeak-ng installed.

Exit codes: 0 every scenario passed; 1 some expectation failed; 2 a scenario file,
character or name given is wrong; 3 no LLM (with `--audio`: no STT or TTS either) is
configured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from xml.etree import ElementTree as ET

from livekit.agents import llm, utils
from livekit.agents.voice.events import (
    AgentStateChangedEvent,
    ConversationItemAddedEvent,
    FunctionToolsExecutedEvent,
)
from livekit.agents.voice.run_result import (
    ChatMessageEvent,
    FunctionCallEvent,
    FunctionCallOutputEvent,
    RunResult,
)

from contract.events import Error, SessionEvent, ToolCall
from contract.loader import CharacterFileError, load_characters
from contract.model import Character
from contract.session_config import DispatchConfig, SessionConfig
from contract.templates import MissingVariables, render
from contract.voice_models import VoiceModelError, resolve_voice_model

from .conversation import Conversation, SessionModels, greet, start_conversation
from .providers import LocalModels, ProviderUnavailable, build_llm, load_local_models
from .scenarios import Expectations, Scenario, ScenarioFile, load_scenario_file, scenario_path
from .settings import Settings
from .worker import _build_models

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_LLM = 3

TURN_TIMEOUT = 120.0
"""Seconds one user turn may take, tool calls and retries included."""

_MODEL_SOURCES = ("stt", "llm", "tts", "agent")
_HELD = "✓"
_MISSED = "✗ FAIL"


class ScenarioSetupError(RuntimeError):
    """A scenario cannot start: a template variable, an MCP server name or a stand-in is wrong."""


@dataclass
class ScenarioOutcome:
    """One scenario's result: its report lines and the expectations that failed."""

    character: str
    scenario: str
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    checks: int = 0
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """Every expectation held."""
        return not self.failures

    turn: int = 0
    """The turn being checked, named in the failures list (the report shows it in place)."""

    def fail(self, message: str) -> None:
        """Record a failed expectation, marked in the report."""
        self.failures.append(f"turn {self.turn}: {message}" if self.turn else message)
        self.lines.append(f"    {_MISSED}  {message}")

    def ok(self, message: str) -> None:
        """Record an expectation that held."""
        self.lines.append(f"    {_HELD} {message}")


def scenario_session(
    character: Character, scenario: Scenario, *, mode: str = "text"
) -> tuple[SessionConfig, DispatchConfig]:
    """The session a scenario runs in, as the token server would start it.

    Raises:
        ScenarioSetupError: a placeholder has no value, a language no voice model,
            or an MCP server the scenario names is not the character's.
    """
    session_id = f"test-{character.slug}-{scenario.name}"
    o = scenario.overrides
    language = o.language or character.language
    try:
        config = SessionConfig.for_character(
            session_id,
            character,
            language=language,
            system_prompt=render(o.system_prompt or character.system_prompt, scenario.metadata),
            greeting=render(o.greeting if o.greeting is not None else character.greeting, scenario.metadata),
            voice_model=resolve_voice_model(
                requested=None, default=character.voice_model, language=language
            ).name,
            reference_audio_url=str(character.reference_audio_url) if character.reference_audio_url else None,
            metadata=scenario.metadata,
            unverified_metadata=scenario.unverified_metadata,
            mode="voice" if mode == "voice" else "text",
        )
    except (MissingVariables, VoiceModelError) as exc:
        raise ScenarioSetupError(str(exc)) from None
    unknown = sorted(set(scenario.mcp_servers) - {s.name for s in config.mcp_servers})
    if unknown:
        raise ScenarioSetupError(f"the character has no MCP server named {', '.join(unknown)}")
    return config, DispatchConfig.for_session(session_id, character, {})


@contextlib.asynccontextmanager
async def _mcp_servers(config: SessionConfig, scenario: Scenario) -> AsyncIterator[SessionConfig]:
    """`config` with the scenario's MCP servers in place of the character's; stand-ins served."""
    async with contextlib.AsyncExitStack() as stack:
        servers = []
        for server in config.mcp_servers:
            replacement = scenario.mcp_servers.get(server.name)
            if replacement is None:
                servers.append(server)
                continue
            url = replacement.url
            if replacement.stand_in is not None:
                module_name, _, attr = replacement.stand_in.partition(":")
                try:
                    factory = getattr(importlib.import_module(module_name), attr)
                except (ImportError, AttributeError) as exc:
                    raise ScenarioSetupError(
                        f"MCP stand-in {replacement.stand_in!r} for '{server.name}' cannot be imported: {exc}"
                    ) from None
                url = await stack.enter_async_context(factory())
            servers.append(server.model_copy(update={"url": url}))
        yield config.model_copy(update={"mcp_servers": servers})


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _args(arguments: dict[str, Any] | str) -> str:
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except ValueError:
            return _short(str(arguments), 120)
    return _short(json.dumps(arguments, ensure_ascii=False), 120)


def _describe_events(result: RunResult[Any], *, heard: bool = False) -> list[str]:
    """What the agent said and did in one run, one line each; `heard`: what STT made of the user."""
    lines: list[str] = []
    for event in result.events:
        if heard and isinstance(event, ChatMessageEvent) and event.item.role == "user":
            lines.append(f"  heard  {_short(event.item.text_content or '', 400)}")
        elif isinstance(event, FunctionCallEvent):
            lines.append(f"  tool   {event.item.name}({_args(event.item.arguments)})")
        elif isinstance(event, FunctionCallOutputEvent):
            mark = " (error)" if event.item.is_error else ""
            lines.append(f"         → {_short(event.item.output, 140)}{mark}")
        elif isinstance(event, ChatMessageEvent) and event.item.role == "assistant":
            lines.append(f"  agent  {_short(event.item.text_content or '', 400)}")
    return lines


def _subset(expected: Any, actual: Any) -> bool:
    """Whether `actual` holds `expected`: dicts key by key, strings without regard to case."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and _subset(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, str) and isinstance(actual, str):
        return expected.strip().lower() == actual.strip().lower()
    return bool(expected == actual)


async def check_turn(
    expect: Expectations,
    result: RunResult[Any],
    reports: list[SessionEvent],
    conversation: Conversation,
    outcome: ScenarioOutcome,
    *,
    judge_llm: llm.LLM,
) -> None:
    """Check one turn's expectations against its RunResult and the session's reports."""
    outcome.checks += expect.count()
    replies = [
        (i, e)
        for i, e in enumerate(result.events)
        if isinstance(e, ChatMessageEvent) and e.item.role == "assistant" and e.item.text_content
    ]
    reply = " ".join(e.item.text_content or "" for _, e in replies)
    calls = [r for r in reports if isinstance(r, ToolCall)]

    for tool in expect.tool_called:
        what = f"{tool.name} called" + (f" with {_args(tool.arguments)}" if tool.arguments else "")
        try:
            result.expect.contains_function_call(name=tool.name)
        except AssertionError:
            called = sorted({e.item.name for e in result.events if isinstance(e, FunctionCallEvent)})
            outcome.fail(f"{what}: it was not called (called: {', '.join(called) or 'no tool'})")
            continue
        received = [c for c in calls if c.tool == tool.name]
        match = [
            c
            for c in received
            if _subset(tool.arguments, c.arguments) and (tool.ok is None or c.ok == tool.ok)
        ]
        if match:
            outcome.ok(what + ("" if tool.ok is None else (" and succeeded" if tool.ok else " and failed")))
        elif not received:
            outcome.fail(f"{what}: the call never reached the tool")
        else:
            got = "; ".join(f"{_args(c.arguments)} ({'ok' if c.ok else 'failed'})" for c in received)
            outcome.fail(f"{what}: it received {got}")
    for name in expect.tool_not_called:
        try:
            result.expect.contains_function_call(name=name)
        except AssertionError:
            outcome.ok(f"{name} not called")
        else:
            outcome.fail(f"{name} not called: it was called")
    for name, value in expect.form.items():
        answers = conversation.form.answers if conversation.form is not None else None
        if answers is None:
            outcome.fail(f"form {name} = {value!r}: the character has no form")
        elif name not in answers:
            outcome.fail(f"form {name} = {value!r}: {name} is not filled")
        elif not _subset(value, answers[name]):
            outcome.fail(f"form {name} = {value!r}: it holds {answers[name]!r}")
        else:
            outcome.ok(f"form {name} = {answers[name]!r}")
    if expect.call_ended is not None:
        reason = conversation.reporter.end_reason or ""
        words = expect.call_ended.reason_contains
        what = "call ended" + (f" with a reason containing {', '.join(map(repr, words))}" if words else "")
        if not conversation.end_call.requested:
            outcome.fail(f"{what}: the call goes on")
        elif missing := [w for w in words if w.lower() not in reason.lower()]:
            outcome.fail(f"{what}: the reason was {reason!r}, without {', '.join(map(repr, missing))}")
        else:
            outcome.ok(f"call ended: {reason!r}")
    for phrase in expect.reply_contains:
        if phrase.lower() in reply.lower():
            outcome.ok(f"reply contains {phrase!r}")
        else:
            outcome.fail(f"reply contains {phrase!r}: " + ("it does not" if reply else "there was no reply"))
    for phrase in expect.reply_not_contains:
        if phrase.lower() in reply.lower():
            outcome.fail(f"reply does not contain {phrase!r}: it does")
        else:
            outcome.ok(f"reply does not contain {phrase!r}")
    if expect.judge is not None:
        if not replies:
            outcome.fail(f"judged: {expect.judge!r}: there was no reply to judge")
        else:
            index = replies[-1][0]
            try:
                await result.expect[index].is_message(role="assistant").judge(judge_llm, intent=expect.judge)
            except AssertionError as exc:
                why = str(exc).split("\nContext around failure:")[0].removeprefix("Judgement failed: ")
                outcome.fail(f"judged: {expect.judge!r}: {_short(why, 300)}")
            else:
                outcome.ok(f"judged: {expect.judge!r}")


ModelBuilder = Callable[[SessionConfig, Settings, LocalModels], SessionModels]


@dataclass
class AudioMode:
    """`--audio`: each user turn spoken by espeak-ng into the session's microphone.

    The local models (Silero VAD, the end-of-turn model) are loaded once for the run.
    """

    local: LocalModels


class _SpokenTurns:
    """The microphone and speaker of a scenario's voice session, and its turns as RunResults.

    A spoken turn does not go through `AgentSession.run` (which takes text), so its
    RunResult is filled from the session's own events, the same items `run` records:
    the user's transcript, each tool call and output, the agent's replies.
    """

    def __init__(self) -> None:
        # the repository's espeak-ng microphone (testkit/audio); see the module docstring
        from testkit.audio.audio_io import PushAudioInput, RecordingAudioOutput
        from testkit.audio.microphone import Microphone

        self.input = PushAudioInput()
        self.output = RecordingAudioOutput(sample_rate=24_000, speed=4.0)
        self.microphone = Microphone(self.input, sample_rate=48_000)

    async def turn(self, conversation: Conversation, text: str) -> RunResult[None]:
        session = conversation.session
        result: RunResult[None] = RunResult(user_input=text, output_type=None)
        heard = asyncio.Event()
        answered = False
        settled = asyncio.Event()  # the agent answered and listens again, or the call closed

        def on_item(ev: ConversationItemAddedEvent) -> None:
            nonlocal answered
            if isinstance(ev.item, llm.ChatMessage) and ev.item.role in ("user", "assistant"):
                result.events.append(ChatMessageEvent(item=ev.item))
                if ev.item.role == "user":
                    heard.set()
                elif heard.is_set():
                    answered = True
                    if session.agent_state == "listening":
                        settled.set()

        def on_tools(ev: FunctionToolsExecutedEvent) -> None:
            for call, output in ev.zipped():
                result.events.extend([FunctionCallEvent(item=call), FunctionCallOutputEvent(item=output)])

        def on_state(ev: AgentStateChangedEvent) -> None:
            if answered and ev.new_state == "listening":
                settled.set()

        def on_close(_: object) -> None:
            settled.set()

        session.on("conversation_item_added", on_item)
        session.on("function_tools_executed", on_tools)
        session.on("agent_state_changed", on_state)
        session.on("close", on_close)
        try:
            await self.microphone.say(text, pause_after=0.3)
            if not conversation.closed.is_set():
                await settled.wait()
        finally:
            session.off("conversation_item_added", on_item)
            session.off("function_tools_executed", on_tools)
            session.off("agent_state_changed", on_state)
            session.off("close", on_close)
        result.events.sort(key=lambda e: e.item.created_at)
        if not heard.is_set():
            raise RuntimeError("nothing was heard: the speech was not transcribed")
        return result


async def run_scenario(
    character: Character,
    scenario: Scenario,
    settings: Settings,
    *,
    audio: AudioMode | None = None,
    build_models: ModelBuilder = _build_models,
) -> ScenarioOutcome:
    """Run one scenario, typed (or spoken, with `audio`), and check every turn.

    Raises:
        ProviderUnavailable: a model the session needs is not configured.
        ScenarioSetupError: the scenario cannot start (see `scenario_session`).
    """
    outcome = ScenarioOutcome(character=character.slug, scenario=scenario.name)
    outcome.lines.append(f"{character.slug} · {scenario.name} ({'audio' if audio else 'text'})")
    if scenario.description:
        outcome.lines.append(f"  {scenario.description}")
    started = time.monotonic()
    config, dispatch = scenario_session(character, scenario, mode="voice" if audio else "text")
    reports: list[SessionEvent] = []
    environ = {**os.environ, **scenario.env}
    spoken = _SpokenTurns() if audio is not None else None
    async with _mcp_servers(config, scenario) as config, contextlib.AsyncExitStack() as stack:
        local = audio.local if audio is not None else LocalModels(vad=None, turn_detector=None)  # type: ignore[arg-type]
        models = build_models(config, settings, local)
        judge_llm = build_llm(config, settings)
        stack.push_async_callback(judge_llm.aclose)
        if spoken is not None:
            spoken.microphone.start()
            stack.push_async_callback(spoken.microphone.aclose)
        conversation = await start_conversation(
            config=config,
            dispatch=dispatch,
            settings=settings,
            models=models,
            report=reports.append,
            environ=environ,
            audio_input=spoken.input if spoken is not None else None,
            audio_output=spoken.output if spoken is not None else None,
        )
        stack.push_async_callback(conversation.aclose)
        for server in conversation.mcp.unavailable:
            outcome.lines.append(f"  note   the MCP server '{server}' is unavailable in this session")
        handle = greet(conversation, config)
        if handle is not None:
            await handle
            outcome.lines.append(f"  agent  {_short(config.greeting, 400)}")
        for number, turn in enumerate(scenario.turns, 1):
            outcome.lines.append(f"  user   {turn.user}")
            outcome.turn = number
            if conversation.closed.is_set():
                outcome.checks += max(turn.expect.count(), 1)
                outcome.fail("the call had already ended")
                break
            before = len(reports)
            try:
                async with asyncio.timeout(TURN_TIMEOUT):
                    if spoken is not None:
                        result = await spoken.turn(conversation, turn.user)
                    else:
                        result = await conversation.session.run(user_input=turn.user)
            except Exception as exc:
                outcome.checks += max(turn.expect.count(), 1)
                kind = "did not answer in time" if isinstance(exc, TimeoutError) else "failed"
                outcome.fail(f"the agent {kind}: {_short(str(exc) or type(exc).__name__)}")
                break
            outcome.lines.extend(_describe_events(result, heard=spoken is not None))
            for error in (r for r in reports[before:] if isinstance(r, Error) and r.source in _MODEL_SOURCES):
                # a failing model fails the turn, whatever it expects (a failed MCP tool may be the point)
                outcome.checks += 1
                outcome.fail(f"the session reported an error: {_short(error.message, 300)}")
            await check_turn(
                turn.expect, result, reports[before:], conversation, outcome, judge_llm=judge_llm
            )
    outcome.seconds = time.monotonic() - started
    verdict = "PASSED" if outcome.passed else f"FAILED ({len(outcome.failures)} of {outcome.checks} checks)"
    outcome.lines.append(f"  {verdict} in {outcome.seconds:.1f} s")
    return outcome


@dataclass
class Selection:
    """What to run: each character with its scenario file."""

    runs: list[tuple[Character, ScenarioFile, Path]]


def select(directory: Path, slugs: Sequence[str], scenario: str | None) -> Selection:
    """The characters and scenario files to run; every scenario file is validated first.

    Raises:
        CharacterFileError: a character or scenario file is invalid (a
            `ScenarioFileError` for the latter), with the file, field and reason.
        LookupError: a slug or scenario name given matches nothing.
    """
    characters = load_characters(directory)
    unknown = [s for s in slugs if s not in characters]
    if unknown:
        raise LookupError(f"no such character in {directory}: {', '.join(unknown)}")
    runs: list[tuple[Character, ScenarioFile, Path]] = []
    for slug in slugs or sorted(characters):
        path = scenario_path(directory, slug)
        if path is None:
            if slugs:
                raise LookupError(f"{slug} has no conversation tests ({directory / (slug + '.tests.yaml')})")
            continue
        runs.append((characters[slug], load_scenario_file(path), path))
    orphans = sorted(
        p.name for p in directory.glob("*.tests.y*ml") if p not in {path for *_, path in runs} and not slugs
    )
    if orphans:
        raise LookupError(f"conversation tests for no character: {', '.join(orphans)}")
    if scenario is not None:
        runs = [
            (c, f.model_copy(update={"scenarios": [s for s in f.scenarios if s.name == scenario]}), p)
            for c, f, p in runs
        ]
        runs = [r for r in runs if r[1].scenarios]
        if not runs:
            raise LookupError(f"no scenario named {scenario!r}")
    if not runs:
        raise LookupError(f"no conversation tests in {directory} (characters/<slug>.tests.yaml)")
    return Selection(runs=runs)


def write_junit(path: Path, outcomes: list[ScenarioOutcome]) -> None:
    """JUnit XML: a test suite per character, a test case per scenario, its report as output."""
    suites = ET.Element("testsuites", name="conversation tests")
    by_character: dict[str, list[ScenarioOutcome]] = {}
    for outcome in outcomes:
        by_character.setdefault(outcome.character, []).append(outcome)
    for character, items in by_character.items():
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=character,
            tests=str(len(items)),
            failures=str(sum(not o.passed for o in items)),
            errors="0",
            time=f"{sum(o.seconds for o in items):.3f}",
        )
        for outcome in items:
            case = ET.SubElement(
                suite, "testcase", classname=character, name=outcome.scenario, time=f"{outcome.seconds:.3f}"
            )
            if not outcome.passed:
                failure = ET.SubElement(case, "failure", message=outcome.failures[0])
                failure.text = "\n".join(outcome.failures)
            ET.SubElement(case, "system-out").text = "\n".join(outcome.lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


async def run_tests(
    settings: Settings,
    *,
    slugs: Sequence[str] = (),
    scenario: str | None = None,
    audio: bool = False,
    junit: Path | None = None,
    out: TextIO = sys.stdout,
    build_models: ModelBuilder = _build_models,
) -> int:
    """Run the selected conversation tests, print their report; the exit code.

    `build_models` makes each session's models (the worker's way by default; a test
    passes its own to use a fake TTS).
    """

    def say(line: str = "") -> None:
        print(line, file=out, flush=True)

    try:
        selection = select(settings.characters_dir, slugs, scenario)
    except CharacterFileError as exc:
        say(f"error: {exc.path}: refused")
        for problem in exc.problems:
            say(f"  {problem}")
        return EXIT_USAGE
    except (LookupError, FileNotFoundError) as exc:
        say(f"error: {exc}")
        return EXIT_USAGE

    outcomes: list[ScenarioOutcome] = []
    started = time.monotonic()
    mode: AudioMode | None = None
    if audio:
        from testkit.audio.speech import ESPEAK

        if ESPEAK is None:
            say("error: --audio speaks the user's turns with espeak-ng: apt-get install espeak-ng")
            return EXIT_USAGE
        mode = AudioMode(local=await asyncio.to_thread(load_local_models))
    async with utils.http_context.open():
        for character, scenarios, _path in selection.runs:
            for item in scenarios.scenarios:
                try:
                    outcome = await run_scenario(
                        character, item, settings, audio=mode, build_models=build_models
                    )
                except ProviderUnavailable as exc:
                    if any("no LLM" in m for m in exc.missing):
                        say(
                            f"error: no LLM is configured for {character.slug}: {exc}.\n"
                            "Set OPENAI_API_KEY (and OPENAI_BASE_URL for another OpenAI-compatible "
                            "server), or the character's llm.base_url."
                        )
                    else:
                        say(f"error: --audio needs the whole voice pipeline: {exc}.")
                    return EXIT_NO_LLM
                except ScenarioSetupError as exc:
                    outcome = ScenarioOutcome(character=character.slug, scenario=item.name)
                    outcome.lines.append(f"{character.slug} · {item.name}")
                    outcome.checks = 1
                    outcome.fail(f"the scenario cannot start: {exc}")
                    outcome.lines.append("  FAILED")
                outcomes.append(outcome)
                for line in outcome.lines:
                    say(line)
                say()
    failed = [o for o in outcomes if not o.passed]
    elapsed = time.monotonic() - started
    if failed:
        say(f"{len(failed)} of {len(outcomes)} scenarios failed in {elapsed:.1f} s:")
        for o in failed:
            say(f"  {o.character} · {o.scenario}: {o.failures[0]}")
    else:
        say(f"all {len(outcomes)} scenarios passed in {elapsed:.1f} s")
    if junit is not None:
        write_junit(junit, outcomes)
        say(f"JUnit report: {junit}")
    return EXIT_FAILED if failed else EXIT_PASSED


def parser() -> argparse.ArgumentParser:
    """The `python -m agent test` command line."""
    p = argparse.ArgumentParser(
        prog="python -m agent test",
        description="Run the conversation tests beside each character (characters/<slug>.tests.yaml).",
        epilog="Exit codes: 0 passed, 1 an expectation failed, 2 a bad file or name, 3 no LLM configured.",
    )
    p.add_argument(
        "slugs", nargs="*", metavar="SLUG", help="characters to test (default: every one with tests)"
    )
    p.add_argument("--scenario", metavar="NAME", help="run only the scenarios of this name")
    p.add_argument(
        "--audio",
        action="store_true",
        help="speak each user turn with espeak-ng through VAD, STT, turn detection and TTS",
    )
    p.add_argument("--junit", metavar="FILE", type=Path, help="also write a JUnit XML report to FILE")
    return p


def main(argv: Sequence[str], settings: Settings | None = None) -> int:
    """`python -m agent test ...`; the exit code."""
    args = parser().parse_args(list(argv))
    # the report is on stdout; the log (warnings only) on stderr, before any library sets its own
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    return asyncio.run(
        run_tests(
            settings or Settings(),
            slugs=args.slugs,
            scenario=args.scenario,
            audio=args.audio,
            junit=args.junit,
        )
    )
