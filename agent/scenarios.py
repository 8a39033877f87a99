"""Conversation tests for a character: the `characters/<slug>.tests.yaml` format and its loader.

A scenario file holds named scenarios. Each one starts a session of the character
(with session metadata and overrides, as a token server would), plays a list of user
turns, and checks expectations after any turn: a tool called with matching
arguments, a form field set, the call ended, a reply that contains (or does not
contain) a phrase, and a plain-language criterion judged by an LLM.
`python -m agent test` runs them (agent/conversation_tests.py).

A file with an error is refused like a character file: `ScenarioFileError` names the
file, the field's path and the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from contract.language import LanguageTag
from contract.loader import SCENARIO_SUFFIXES, CharacterFileError, read_yaml_mapping, yaml_problems
from contract.model import Name, Slug, unique_names


def _one_or_many(value: Any) -> Any:
    # `reply_contains: shipped` reads better than a list of one
    return [value] if isinstance(value, str | dict) else value


Phrases = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=500)]], BeforeValidator(_one_or_many)
]
ScenarioName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolExpectation(_Strict):
    """A tool was called in the turn, with at least these arguments.

    The arguments are the ones the tool received: for an MCP tool, those the worker
    filled from the session metadata (`metadata_arguments`) too, which the LLM never sees.
    """

    name: str = Field(min_length=1, max_length=128)
    arguments: dict[str, Any] = Field(default_factory=dict)
    ok: bool | None = None
    """True: the call succeeded; False: it failed (a refused form value, a tool error)."""


class CallEnded(_Strict):
    """The agent ended the call (`end_call`) in the turn; the reason contains these words."""

    reason_contains: Phrases = Field(default_factory=list)


def _call_ended(value: Any) -> Any:
    return {} if value is True else value


class Expectations(_Strict):
    """What must be true after a turn; every field is optional."""

    tool_called: Annotated[list[ToolExpectation], BeforeValidator(_one_or_many)] = Field(default_factory=list)
    tool_not_called: Phrases = Field(default_factory=list)
    form: dict[str, Any] = Field(default_factory=dict)
    """Form fields and the values they hold after the turn (as recorded: dates as YYYY-MM-DD)."""
    call_ended: Annotated[CallEnded | None, BeforeValidator(_call_ended)] = None
    reply_contains: Phrases = Field(default_factory=list)
    reply_not_contains: Phrases = Field(default_factory=list)
    judge: str | None = Field(None, min_length=1, max_length=2000)
    """A plain-language criterion the agent's reply must meet, judged by the LLM."""

    def count(self) -> int:
        """How many checks these are."""
        return (
            len(self.tool_called)
            + len(self.tool_not_called)
            + len(self.form)
            + (self.call_ended is not None)
            + len(self.reply_contains)
            + len(self.reply_not_contains)
            + (self.judge is not None)
        )


class Turn(_Strict):
    """One thing the user says (typed in text mode, spoken with `--audio`), then the checks."""

    user: str = Field(min_length=1, max_length=2000)
    expect: Expectations = Field(default_factory=Expectations)


class MCPStandIn(_Strict):
    """Where a scenario's session finds one of the character's MCP servers instead.

    `url`: another server (a staging copy). `stand_in`: `module:callable`, a callable
    returning an async context manager that serves an MCP server and yields its URL
    (the project's: `testkit.standins.mcp_server:orders_standin`).
    """

    url: Annotated[str, StringConstraints(pattern=r"^https?://")] | None = None
    stand_in: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> MCPStandIn:
        if (self.url is None) == (self.stand_in is None):
            raise ValueError("give exactly one of 'url' and 'stand_in'")
        return self


class Overrides(_Strict):
    """Per-session overrides, as a start-session request would give them."""

    language: LanguageTag | None = None
    system_prompt: str | None = Field(None, min_length=1, max_length=20_000)
    greeting: str | None = Field(None, max_length=2_000)


class Scenario(_Strict):
    """One conversation: the session it runs in and its turns."""

    name: ScenarioName
    description: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Verified session metadata (from the site's server): fills templates and bound tool arguments."""
    unverified_metadata: dict[str, Any] = Field(default_factory=dict)
    """Metadata from the page itself: shown to the LLM as unverified, bound to nothing."""
    overrides: Overrides = Field(default_factory=Overrides)
    mcp_servers: dict[Name, MCPStandIn] = Field(default_factory=dict)
    env: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], str] = Field(
        default_factory=dict
    )
    """Environment for `${NAME}` in the character's MCP headers, for this session only."""
    turns: list[Turn] = Field(min_length=1, max_length=100)


class ScenarioFile(_Strict):
    """`characters/<slug>.tests.yaml`: the conversation tests of the character `<slug>`."""

    character: Slug | None = None
    """Optional; when given, it must be the slug the file is named after."""
    scenarios: list[Scenario] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> ScenarioFile:
        unique_names(self.scenarios, "scenario")
        return self


class ScenarioFileError(CharacterFileError):
    """A scenario file that cannot be used: names the file, the field and the fault."""


def scenario_path(directory: Path, slug: str) -> Path | None:
    """The scenario file of character `slug` in `directory`, or None when it has none."""
    for suffix in SCENARIO_SUFFIXES:
        path = directory / f"{slug}{suffix}"
        if path.is_file():
            return path
    return None


def slug_of(path: Path) -> str:
    """The character a scenario file is for: its name without `.tests.yaml`."""
    name = path.name
    for suffix in SCENARIO_SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return path.stem


def load_scenario_file(path: Path) -> ScenarioFile:
    """Parse and validate one scenario file.

    Raises:
        ScenarioFileError: unreadable YAML, a field that fails validation, or a
            `character` that is not the one the file is named after.
    """
    raw = read_yaml_mapping(path, ScenarioFileError, "a mapping with a 'scenarios' list")
    try:
        loaded = ScenarioFile.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioFileError(path, yaml_problems(exc)) from None
    slug = slug_of(path)
    if loaded.character is not None and loaded.character != slug:
        raise ScenarioFileError(path, [f"character: {loaded.character!r} must match the file name {slug!r}"])
    return loaded
