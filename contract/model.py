"""The character file format: one YAML file per character, validated on load."""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from .language import LanguageTag
from .origins import validate_origin_pattern
from .voice_models import VoiceModelName

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
T = TypeVar("T")

# How a session talks: spoken turns (and typed ones beside them), or typed turns only.
SessionMode = Literal["voice", "text"]
SESSION_MODES: tuple[SessionMode, ...] = ("voice", "text")

# Request fields a character may lock against per-session overrides.
OVERRIDABLE_FIELDS = (
    "mode",
    "language",
    "system_prompt",
    "greeting",
    "voice_model",
    "reference_audio_url",
    "mcp_headers",
    "metadata",
)

# What a page may set without a credential unless its character says otherwise: nothing
# that reaches a tool, a header, the prompt or the cloned voice. Its metadata is kept
# apart as unverified. (A page asking for a mode its character does not offer is a 422.)
BROWSER_OVERRIDES = ("mode", "language", "voice_model", "greeting", "metadata")


def unique_names(items: list[T], what: str) -> list[T]:
    """`items` if no two share a `name`.

    Raises:
        ValueError: naming the repeated names.
    """
    names = [item.name for item in items]  # type: ignore[attr-defined]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate {what} names: {', '.join(dupes)}")
    return items


def unique_modes(modes: list[SessionMode]) -> list[SessionMode]:
    """`modes` if none is given twice.

    Raises:
        ValueError: naming the repeated mode.
    """
    dupes = sorted({m for m in modes if modes.count(m) > 1})
    if dupes:
        raise ValueError(f"modes given twice: {', '.join(dupes)}")
    return modes


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LLMConfig(_Strict):
    """Which OpenAI-compatible model the agent talks with."""

    model: str = "gpt-4o-mini"
    base_url: AnyHttpUrl | None = None
    temperature: float = Field(0.7, ge=0.0, le=2.0)


class STTConfig(_Strict):
    """Deepgram speech-to-text settings."""

    model: str = "nova-3"


class MCPServerConfig(_Strict):
    """An MCP server the agent may call tools on, over streamable HTTP.

    `headers` values may reference the worker's environment as `${ENV_NAME}`; they
    are resolved on the worker and never travel in room metadata.
    `metadata_arguments` maps a tool argument name to a key of the session
    metadata: the worker fills it and hides it from the LLM.
    """

    name: Name
    url: AnyHttpUrl
    headers: dict[str, str] = Field(default_factory=dict)
    allowed_tools: list[str] | None = None
    timeout: float = Field(10.0, gt=0, le=300)
    metadata_arguments: dict[str, str] = Field(default_factory=dict)


FormFieldType = Literal["string", "number", "integer", "boolean", "email", "phone", "date", "choice"]


class FormField(_Strict):
    """One answer the agent collects during the call."""

    name: Name
    type: FormFieldType = "string"
    description: str = ""
    required: bool = False
    choices: list[str] | None = None

    @model_validator(mode="after")
    def _choices_match_type(self) -> FormField:
        if self.type == "choice" and not self.choices:
            raise ValueError("a field of type 'choice' needs a non-empty 'choices' list")
        if self.choices is not None and self.type != "choice":
            raise ValueError("'choices' is only allowed on fields of type 'choice'")
        return self


class FormConfig(_Strict):
    """The form a character fills in during the call."""

    fields: Annotated[list[FormField], AfterValidator(lambda v: unique_names(v, "form field"))] = Field(
        min_length=1
    )


class AnalysisSummary(_Strict):
    """Whether the post-call analysis writes a summary, and how."""

    enabled: bool = True
    instruction: str = Field("", max_length=2_000)


class SuccessCriterion(_Strict):
    """A yes/no question the analysis answers about the call, with a short reason."""

    name: Name
    question: str = Field(min_length=1, max_length=500)


class AnalysisConfig(_Strict):
    """What an LLM works out from a call once it has ended.

    `summary` is `true`/`false` or `{instruction: ...}`; `fields` are extracted with
    the same types as the form's; `success` questions are answered yes or no, each with
    a short reason.
    """

    summary: AnalysisSummary = Field(default_factory=AnalysisSummary)
    fields: Annotated[list[FormField], AfterValidator(lambda v: unique_names(v, "analysis field"))] = Field(
        default_factory=list, max_length=100
    )
    success: Annotated[
        list[SuccessCriterion], AfterValidator(lambda v: unique_names(v, "success criterion"))
    ] = Field(default_factory=list, max_length=50)

    @field_validator("summary", mode="before")
    @classmethod
    def _summary_on_or_off(cls, value: object) -> object:
        return {"enabled": value} if isinstance(value, bool) else value

    @model_validator(mode="after")
    def _asks_something(self) -> AnalysisConfig:
        if not (self.summary.enabled or self.fields or self.success):
            raise ValueError("an analysis needs a summary, a field or a success criterion")
        return self


class VoiceSettings(_Strict):
    """Chatterbox generation parameters."""

    exaggeration: float = Field(0.5, ge=0.0, le=2.0)
    cfg_weight: float = Field(0.5, ge=0.0, le=1.0)
    temperature: float = Field(0.8, gt=0.0, le=2.0)


# livekit-agents refuses a VAD silence under 0.25 s beside the streaming end-of-turn
# model: the model predicts from 0.2 s of silence, and the VAD must not end speech first.
MIN_VAD_SILENCE_SECONDS = 0.25


class TurnConfig(_Strict):
    """When the user's turn ends and what interrupts the agent; local models only.

    A turn ends when the VAD has heard `min_silence_seconds` of silence and the
    end-of-turn model agrees; the commit then waits until `min_delay_seconds` after the
    end of speech, or `max_delay_seconds` when the model judges the user not done.
    The agent stops for the user's speech once it is `interrupt_min_speech_seconds`
    long and its transcript holds `interrupt_min_words` words (0: any speech). Defaults
    are measured in docs/benchmarks.md ("Turn-taking").
    """

    min_silence_seconds: float = Field(0.55, ge=MIN_VAD_SILENCE_SECONDS, le=2.0)
    min_delay_seconds: float = Field(0.3, ge=0.0, le=5.0)
    max_delay_seconds: float = Field(2.5, ge=0.1, le=10.0)
    interrupt_min_speech_seconds: float = Field(0.5, ge=0.05, le=5.0)
    interrupt_min_words: int = Field(2, ge=0, le=10)

    @model_validator(mode="after")
    def _delays_ordered(self) -> TurnConfig:
        if self.max_delay_seconds < self.min_delay_seconds:
            raise ValueError("max_delay_seconds must not be below min_delay_seconds")
        return self


class Character(_Strict):
    """A talking, tool-using character, as written in `characters/<slug>.yaml`."""

    slug: Slug
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    active: bool = True
    modes: Annotated[list[SessionMode], AfterValidator(unique_modes)] = Field(
        default_factory=lambda: list(SESSION_MODES), min_length=1
    )
    """How its sessions may talk; the first is the default when a request names none."""
    language: LanguageTag | None = None
    system_prompt: str = Field(min_length=1, max_length=20_000)
    greeting: str = Field("", max_length=2_000)
    greeting_interruptible: bool = True
    voice_model: VoiceModelName = "chatterbox-en-v1"
    voice: VoiceSettings = Field(default_factory=VoiceSettings)
    reference_audio_url: AnyHttpUrl | None = None
    allowed_origins: list[Annotated[str, AfterValidator(validate_origin_pattern)]] = Field(
        default_factory=list
    )
    max_concurrent_sessions: int = Field(10, ge=1, le=100_000)
    max_duration_seconds: int = Field(3600, ge=10, le=24 * 3600)
    join_timeout_seconds: int = Field(120, ge=5, le=3600)
    locked_fields: list[Literal[OVERRIDABLE_FIELDS]] = Field(default_factory=list)  # type: ignore[valid-type]
    browser_overrides: list[Literal[OVERRIDABLE_FIELDS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(BROWSER_OVERRIDES)
    )
    llm: LLMConfig = Field(default_factory=LLMConfig)
    stt: STTConfig = Field(default_factory=STTConfig)
    turn: TurnConfig = Field(default_factory=TurnConfig)
    mcp_servers: Annotated[list[MCPServerConfig], AfterValidator(lambda v: unique_names(v, "MCP server"))] = (
        Field(default_factory=list)
    )
    form: FormConfig | None = None
    analysis: AnalysisConfig | None = None
    webhook_url: AnyHttpUrl | None = None
    webhook_secret: str | None = None

    @model_validator(mode="after")
    def _browser_overrides_not_locked(self) -> Character:
        both = sorted(set(self.browser_overrides) & set(self.locked_fields))
        if both and "browser_overrides" in self.model_fields_set:
            raise ValueError(f"fields both locked and in browser_overrides: {', '.join(both)}")
        return self

    @model_validator(mode="after")
    def _voice_model_speaks_language(self) -> Character:
        from .voice_models import VoiceModelError, resolve_voice_model

        try:
            resolve_voice_model(requested=None, default=self.voice_model, language=self.language)
        except VoiceModelError as exc:
            raise ValueError(str(exc)) from None
        return self
