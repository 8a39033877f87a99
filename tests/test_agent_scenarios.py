"""Conversation tests for characters (`python -m agent test`), tested themselves.

The shipped scenarios run against the scripted OpenAI-compatible stand-in (the same
wire protocol as a real provider) and a real MCP server for the orders: they pass. A
deliberately failing scenario fails with its failure marked; a bad scenario file is
refused with its file, path and reason; with no LLM configured the command says so
and exits with its own code.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from agent.conversation_tests import (
    EXIT_FAILED,
    EXIT_NO_LLM,
    EXIT_PASSED,
    EXIT_USAGE,
    run_tests,
    scenario_session,
)
from agent.scenarios import Scenario, ScenarioFileError, load_scenario_file
from agent.settings import Settings
from contract import DEFAULT_CHARACTERS_DIR, load_characters
from testkit.character_script import character_script
from testkit.standins.openai_standin import OpenAIStandIn

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
async def llm_standin(aiohttp_server) -> tuple[OpenAIStandIn, str]:
    standin = OpenAIStandIn(script=character_script, first_token_delay=0.0)
    server = await aiohttp_server(standin.app())
    return standin, str(server.make_url("/v1"))


def settings_for(base_url: str, characters_dir: Path = DEFAULT_CHARACTERS_DIR) -> Settings:
    return Settings(
        _env_file=None,
        openai_api_key="test-key",
        openai_base_url=base_url,
        characters_dir=characters_dir,
        provider_max_retry=0,
    )


async def test_the_shipped_scenarios_pass(llm_standin, tmp_path):
    standin, url = llm_standin
    out = io.StringIO()
    junit = tmp_path / "junit.xml"
    code = await run_tests(settings_for(url), junit=junit, out=out)
    report = out.getvalue()
    assert code == EXIT_PASSED, report
    assert "✗" not in report
    assert "all 4 scenarios passed" in report
    # each turn: what the user said, what the agent said and did, and each check
    assert "  user   Hi, where is my order A123?" in report
    assert "  tool   lookup_order(" in report
    assert "  agent  Your order A123 shipped yesterday, Ada." in report
    # the order tool received the metadata-bound customer, not the one the caller claimed
    assert '✓ lookup_order called with {"order_id": "B777", "customer_id": "cust-42"} and failed' in report
    assert "✓ form date_of_birth = '1985-12-10'" in report
    assert "✓ call ended: 'every required field is filled'" in report
    assert "✓ judged: 'Answers in Spanish, and says the clinic is not open on Saturdays.'" in report

    # the real agent code ran: the character's prompt with its metadata, its tools, its model
    sam = next(r for r in standin.requests if "You are Sam" in r["messages"][0]["content"])
    assert sam["model"] == "gpt-4o-mini"
    assert '"user_id": "cust-42"' in sam["messages"][0]["content"]
    tools = {t["function"]["name"] for t in sam["tools"]}
    assert {"lookup_order", "end_call"} <= tools
    lookup = next(t for t in sam["tools"] if t["function"]["name"] == "lookup_order")
    assert "customer_id" not in lookup["function"]["parameters"]["properties"]
    riley = next(r for r in standin.requests if "You are Riley" in r["messages"][0]["content"])
    assert "record_answer" in {t["function"]["name"] for t in riley["tools"]}
    # the judge was asked through livekit-agents' judge(), with its own tool
    judged = [
        r for r in standin.requests if r["messages"][0]["content"].startswith("You are a test evaluator")
    ]
    assert len(judged) == 5
    assert all(r["tools"][0]["function"]["name"] == "check_intent" for r in judged)

    suites = ET.parse(junit).getroot()  # noqa: S314 - the report this test just wrote
    cases = {(c.get("classname"), c.get("name")) for c in suites.iter("testcase")}
    assert ("support-bot", "another-customers-order") in cases
    assert len(cases) == 4
    assert not list(suites.iter("failure"))


FAILING = """\
character: receptionist
scenarios:
  - name: wrong-hopes
    turns:
      - user: Hello, what are your opening hours?
        expect:
          reply_contains: Monday
      - user: Perdón, ¿puede repetirlo en español? ¿Abren los sábados?
        expect:
          reply_contains: Saturday 9 to 12
          tool_called: {name: lookup_order}
          judge: Speaks like a pirate.
"""


async def test_a_failing_scenario_exits_non_zero_and_marks_the_failure(llm_standin, tmp_path):
    _, url = llm_standin
    shutil.copy(DEFAULT_CHARACTERS_DIR / "receptionist.yaml", tmp_path / "receptionist.yaml")
    (tmp_path / "receptionist.tests.yaml").write_text(FAILING)
    out = io.StringIO()
    junit = tmp_path / "junit.xml"
    code = await run_tests(settings_for(url, tmp_path), junit=junit, out=out)
    report = out.getvalue()
    assert code == EXIT_FAILED, report
    assert "    ✓ reply contains 'Monday'" in report
    assert "    ✗ FAIL  reply contains 'Saturday 9 to 12': it does not" in report
    assert "    ✗ FAIL  lookup_order called: it was not called (called: no tool)" in report
    assert "    ✗ FAIL  judged: 'Speaks like a pirate.': the message does not meet the criterion" in report
    assert "FAILED (3 of 4 checks)" in report
    assert "1 of 1 scenarios failed" in report
    # the failing turn is shown with what the agent said
    assert "  agent  No, los sábados estamos cerrados." in report
    assert "  receptionist · wrong-hopes: turn 2: lookup_order called: it was not called" in report
    failure = next(ET.parse(junit).getroot().iter("failure"))  # noqa: S314 - the report just written
    assert failure.get("message") == "turn 2: lookup_order called: it was not called (called: no tool)"
    assert "turn 2: reply contains 'Saturday 9 to 12': it does not" in (failure.text or "")


async def test_only_the_named_scenario_runs(llm_standin):
    _, url = llm_standin
    out = io.StringIO()
    code = await run_tests(settings_for(url), slugs=["support-bot"], scenario="own-order", out=out)
    assert code == EXIT_PASSED, out.getvalue()
    assert "support-bot · own-order" in out.getvalue()
    assert "another-customers-order" not in out.getvalue()
    assert "all 1 scenarios passed" in out.getvalue()


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            "scenarios:\n  - name: a\n    turns:\n      - user: hi\n        expect: {reply_contain: x}\n",
            "scenarios.0.turns.0.expect.reply_contain: Extra inputs are not permitted",
        ),
        ("scenarios:\n  - name: a\n    turns: []\n", "scenarios.0.turns: List should have at least 1 item"),
        (
            "scenarios:\n  - name: a\n    mcp_servers: {orders: {}}\n    turns: [{user: hi}]\n",
            "scenarios.0.mcp_servers.orders: give exactly one of 'url' and 'stand_in'",
        ),
        (
            "character: intake\nscenarios: [{name: a, turns: [{user: hi}]}]\n",
            "character: 'intake' must match the file name 'receptionist'",
        ),
        (
            "scenarios: [{name: a, turns: [{user: hi}]}, {name: a, turns: [{user: hi}]}]\n",
            "(file): duplicate scenario names: a",
        ),
        ("scenarios: [oops\n", "(file): cannot be read as YAML"),
    ],
)
async def test_a_bad_scenario_file_is_refused_with_file_path_and_reason(tmp_path, text, where):
    shutil.copy(DEFAULT_CHARACTERS_DIR / "receptionist.yaml", tmp_path / "receptionist.yaml")
    path = tmp_path / "receptionist.tests.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioFileError) as caught:
        load_scenario_file(path)
    assert caught.value.path == path
    assert any(p.startswith(where) for p in caught.value.problems), caught.value.problems
    out = io.StringIO()
    # refused before any LLM is needed
    code = await run_tests(Settings(_env_file=None, characters_dir=tmp_path), out=out)
    assert code == EXIT_USAGE
    assert f"error: {path}: refused" in out.getvalue()
    assert where in out.getvalue()


def test_scenario_files_are_not_characters(tmp_path):
    shutil.copy(DEFAULT_CHARACTERS_DIR / "intake.yaml", tmp_path / "intake.yaml")
    shutil.copy(DEFAULT_CHARACTERS_DIR / "intake.tests.yaml", tmp_path / "intake.tests.yaml")
    assert list(load_characters(tmp_path)) == ["intake"]
    assert set(load_characters(DEFAULT_CHARACTERS_DIR)) == {"intake", "receptionist", "support-bot"}


def test_every_shipped_character_has_scenarios():
    for slug in load_characters(DEFAULT_CHARACTERS_DIR):
        assert load_scenario_file(DEFAULT_CHARACTERS_DIR / f"{slug}.tests.yaml").scenarios


async def test_unknown_names_are_refused(tmp_path):
    out = io.StringIO()
    assert await run_tests(Settings(_env_file=None), slugs=["nobody"], out=out) == EXIT_USAGE
    assert "no such character" in out.getvalue()
    out = io.StringIO()
    assert await run_tests(Settings(_env_file=None), scenario="nothing-like-it", out=out) == EXIT_USAGE
    assert "no scenario named 'nothing-like-it'" in out.getvalue()


def test_with_no_llm_configured_the_command_says_so_with_its_own_exit_code():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CHARACTERS_DIR"))}
    env |= {"OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "agent", "test", "receptionist"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == EXIT_NO_LLM, proc.stdout + proc.stderr
    assert "no LLM is configured for receptionist" in proc.stdout
    assert "OPENAI_API_KEY" in proc.stdout


async def test_a_failing_llm_fails_the_turn_and_says_why(aiohttp_server):
    standin = OpenAIStandIn(script=character_script, first_token_delay=0.0, fail_next=1000)
    server = await aiohttp_server(standin.app())
    out = io.StringIO()
    code = await run_tests(settings_for(str(server.make_url("/v1"))), slugs=["receptionist"], out=out)
    report = out.getvalue()
    assert code == EXIT_FAILED, report
    assert "    ✗ FAIL  the session reported an error: llm error: APIStatusError" in report
    assert "    ✗ FAIL  reply contains 'Monday': there was no reply" in report


async def test_a_scenario_that_cannot_start_fails_and_says_why(llm_standin, tmp_path):
    _, url = llm_standin
    shutil.copy(DEFAULT_CHARACTERS_DIR / "receptionist.yaml", tmp_path / "receptionist.yaml")
    (tmp_path / "receptionist.tests.yaml").write_text(
        "scenarios:\n"
        "  - name: no-such-server\n    mcp_servers: {crm: {url: 'http://127.0.0.1:9/mcp'}}\n"
        "    turns: [{user: hi}]\n"
        "  - name: fine\n    turns: [{user: 'Hello, what are your opening hours?', expect: {reply_contains: Monday}}]\n"
    )
    out = io.StringIO()
    code = await run_tests(settings_for(url, tmp_path), out=out)
    report = out.getvalue()
    assert code == EXIT_FAILED, report
    assert "✗ FAIL  the scenario cannot start: the character has no MCP server named crm" in report
    assert "receptionist · fine (text)" in report
    assert "1 of 2 scenarios failed" in report


async def test_tests_for_no_character_are_refused(tmp_path):
    shutil.copy(DEFAULT_CHARACTERS_DIR / "receptionist.yaml", tmp_path / "receptionist.yaml")
    (tmp_path / "receptionist.tests.yaml").write_text("scenarios: [{name: a, turns: [{user: hi}]}]\n")
    (tmp_path / "ghost.tests.yaml").write_text("scenarios: [{name: a, turns: [{user: hi}]}]\n")
    out = io.StringIO()
    assert await run_tests(Settings(_env_file=None, characters_dir=tmp_path), out=out) == EXIT_USAGE
    assert "conversation tests for no character: ghost.tests.yaml" in out.getvalue()


def test_a_scenario_session_is_the_character_with_its_metadata_and_overrides():
    characters = load_characters(DEFAULT_CHARACTERS_DIR)
    scenario = Scenario.model_validate(
        {
            "name": "spanish",
            "metadata": {"business": "Clínica Sol"},
            "unverified_metadata": {"page": "/contact"},
            "overrides": {"language": "es", "greeting": "¡Hola!"},
            "turns": [{"user": "hola"}],
        }
    )
    config, dispatch = scenario_session(characters["receptionist"], scenario)
    assert config.mode == "text"
    assert config.language == "es"
    assert config.greeting == "¡Hola!"
    assert "receptionist of Clínica Sol" in config.system_prompt
    assert config.unverified_metadata == {"page": "/contact"}
    assert config.voice_model == "chatterbox-multilingual-v1"
    assert dispatch.session_id == config.session_id == "test-receptionist-spanish"
    voice, _ = scenario_session(characters["receptionist"], scenario, mode="voice")
    assert voice.mode == "voice"
