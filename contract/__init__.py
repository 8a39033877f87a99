"""Characters: the YAML format, its loader and the session configuration.

The token server writes the session configuration into LiveKit; the agent worker
reads it back.
"""

from .loader import DEFAULT_CHARACTERS_DIR, CharacterFileError, load_character, load_characters
from .model import (
    OVERRIDABLE_FIELDS,
    SESSION_MODES,
    AnalysisConfig,
    Character,
    FormConfig,
    FormField,
    LLMConfig,
    MCPServerConfig,
    SessionMode,
    STTConfig,
    VoiceSettings,
)
from .session_config import DispatchConfig, PublicMCPServer, SessionConfig
from .voice_models import VOICE_MODELS, VoiceModel, VoiceModelError, resolve_voice_model

__all__ = [
    "DEFAULT_CHARACTERS_DIR",
    "OVERRIDABLE_FIELDS",
    "SESSION_MODES",
    "VOICE_MODELS",
    "AnalysisConfig",
    "Character",
    "CharacterFileError",
    "DispatchConfig",
    "FormConfig",
    "FormField",
    "LLMConfig",
    "MCPServerConfig",
    "PublicMCPServer",
    "STTConfig",
    "SessionConfig",
    "SessionMode",
    "VoiceModel",
    "VoiceModelError",
    "VoiceSettings",
    "load_character",
    "load_characters",
    "resolve_voice_model",
]
