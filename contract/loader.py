"""Load and validate every character file in a directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .model import Character
from .validation import validation_problems


class CharacterFileError(ValueError):
    """A character file that cannot be used: names the file, the field and the fault."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


SCENARIO_SUFFIXES = (".tests.yaml", ".tests.yml")
"""A character's conversation tests: `characters/<slug>.tests.yaml`, beside the character."""


def is_scenario_file(path: Path) -> bool:
    """Whether `path` holds conversation tests rather than a character."""
    return path.name.endswith(SCENARIO_SUFFIXES)


def yaml_problems(exc: ValidationError) -> list[str]:
    """`field: message` lines for a YAML file that failed validation, `(file)` for the whole."""
    return [f"{p['field']}: {p['message']}" for p in validation_problems(exc, root="(file)")]


def read_yaml_mapping(path: Path, error: type[CharacterFileError], shape: str) -> dict[str, Any]:
    """The YAML mapping in `path`; raises `error` naming the file when it is unreadable or not `shape`."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise error(path, [f"(file): cannot be read as YAML: {exc}"]) from None
    if not isinstance(raw, dict):
        raise error(path, [f"(file): must be {shape}"])
    return raw


def load_character(path: Path) -> Character:
    """Parse and validate one YAML file.

    Raises:
        CharacterFileError: unreadable YAML, or a field that fails validation.
    """
    raw = read_yaml_mapping(path, CharacterFileError, "a mapping of character fields")
    try:
        character = Character.model_validate(raw)
    except ValidationError as exc:
        raise CharacterFileError(path, yaml_problems(exc)) from None
    if character.slug != path.stem:
        raise CharacterFileError(path, [f"slug: {character.slug!r} must match the file name {path.stem!r}"])
    return character


def load_characters(directory: Path) -> dict[str, Character]:
    """Every `*.yaml` / `*.yml` character in `directory`, by slug.

    A character's conversation tests beside it (`<slug>.tests.yaml`) are not characters.

    Raises:
        CharacterFileError: the first bad file (start-up stops on it).
        FileNotFoundError: `directory` does not exist.
    """
    if not directory.is_dir():
        raise FileNotFoundError(f"characters directory {directory} does not exist")
    files = sorted(
        p for p in [*directory.glob("*.yaml"), *directory.glob("*.yml")] if not is_scenario_file(p)
    )
    characters: dict[str, Character] = {}
    for path in files:
        character = load_character(path)
        if character.slug in characters:
            raise CharacterFileError(path, [f"slug: {character.slug!r} is defined twice"])
        characters[character.slug] = character
    return characters


DEFAULT_CHARACTERS_DIR = Path(__file__).resolve().parent.parent / "characters"
