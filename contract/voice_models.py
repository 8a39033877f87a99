"""The named voice models.

Shared by the token server (validation at session start) and the voice service
(which engine class to load).

The registry is plain data so that the token server can use it without importing
torch or chatterbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator

# ChatterboxMultilingualTTS.get_supported_languages() in chatterbox-tts 0.1.7,
# copied as data so this module stays import-light.
MULTILINGUAL_LANGUAGES: frozenset[str] = frozenset(
    [
        "ar",
        "da",
        "de",
        "el",
        "en",
        "es",
        "fi",
        "fr",
        "he",
        "hi",
        "it",
        "ja",
        "ko",
        "ms",
        "nl",
        "no",
        "pl",
        "pt",
        "ru",
        "sv",
        "sw",
        "tr",
        "zh",
    ]
)


@dataclass(frozen=True)
class VoiceModel:
    """One named voice model.

    Attributes:
        name: The public name used in character files and requests.
        engine: Which chatterbox class serves it ("tts", "multilingual", "turbo").
        hf_repo: The Hugging Face repository its weights come from.
        languages: Primary language subtags it can speak.
        min_reference_seconds: Shortest reference clip it can clone from.
    """

    name: str
    engine: str
    hf_repo: str
    languages: frozenset[str]
    min_reference_seconds: float = 3.0

    def speaks(self, language: str | None) -> bool:
        """Whether this model can speak `language` (a BCP-47 tag; None means any)."""
        return language is None or primary_subtag(language) in self.languages


VOICE_MODELS: dict[str, VoiceModel] = {
    m.name: m
    for m in (
        VoiceModel("chatterbox-en-v1", "tts", "ResembleAI/chatterbox", frozenset({"en"})),
        VoiceModel(
            "chatterbox-multilingual-v1",
            "multilingual",
            "ResembleAI/chatterbox",
            MULTILINGUAL_LANGUAGES,
        ),
        VoiceModel(
            "chatterbox-turbo-v1",
            "turbo",
            "ResembleAI/chatterbox-turbo",
            frozenset({"en"}),
            min_reference_seconds=5.0,
        ),
    )
}
DEFAULT_VOICE_MODEL = "chatterbox-en-v1"
MULTILINGUAL_VOICE_MODEL = "chatterbox-multilingual-v1"


class VoiceModelError(ValueError):
    """A voice model that does not exist or cannot speak the session's language."""


def primary_subtag(language: str) -> str:
    """The primary language subtag of a BCP-47 tag: "pt-BR" -> "pt"."""
    return language.split("-", 1)[0].lower()


def resolve_voice_model(*, requested: str | None, default: str, language: str | None) -> VoiceModel:
    """Choose the voice model for a session.

    A model the request names explicitly must exist and speak the language. When
    the model is only the character's default and cannot speak the language, the
    session switches to the multilingual model.

    Raises:
        VoiceModelError: the model is unknown, or nothing can speak the language.
    """
    name = requested or default
    model = VOICE_MODELS.get(name)
    if model is None:
        known = ", ".join(sorted(VOICE_MODELS))
        raise VoiceModelError(f"unknown voice model {name!r}; known models: {known}")
    if model.speaks(language):
        return model
    if requested is not None:
        raise VoiceModelError(f"voice model {name!r} cannot speak language {language!r}")
    fallback = VOICE_MODELS[MULTILINGUAL_VOICE_MODEL]
    if fallback.speaks(language):
        return fallback
    raise VoiceModelError(f"no voice model can speak language {language!r}")


def validate_voice_model_name(name: str) -> str:
    """`name` if it is a known voice model.

    Raises:
        ValueError: it is not.
    """
    if name not in VOICE_MODELS:
        raise ValueError(f"unknown voice model {name!r}; known: {', '.join(sorted(VOICE_MODELS))}")
    return name


VoiceModelName = Annotated[str, AfterValidator(validate_voice_model_name)]
"""The name of a voice model in the registry."""
