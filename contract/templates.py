"""`{{name}}` placeholders in prompts and greetings, filled from session metadata.

`{{user.name}}` walks nested objects; `{{name|default text}}` supplies a default.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*(?:\|([^}]*))?\}\}")


class MissingVariables(ValueError):
    """Placeholders with no value in the metadata and no default."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(f"missing template variables: {', '.join(names)}")
        self.names = names


def lookup_metadata(metadata: Mapping[str, Any], path: str) -> Any:
    """`metadata[path]`, walking dots into nested objects; None when absent."""
    value: Any = metadata
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)


def missing_variables(template: str, metadata: dict[str, Any]) -> list[str]:
    """Placeholder names in `template` that `metadata` cannot fill."""
    return sorted(
        {
            m[1]
            for m in _PLACEHOLDER.finditer(template)
            if m[2] is None and lookup_metadata(metadata, m[1]) is None
        }
    )


class RenderedTooLong(ValueError):
    """The filled-in text is longer than allowed (a placeholder repeated over a large value)."""


def render(template: str, metadata: dict[str, Any], *, max_length: int | None = None) -> str:
    """Fill every placeholder in `template`.

    Raises:
        MissingVariables: some placeholder has neither a value nor a default.
        RenderedTooLong: the result would exceed `max_length` characters.
    """
    missing = missing_variables(template, metadata)
    if missing:
        raise MissingVariables(missing)
    budget = [max_length if max_length is not None else float("inf")]

    def fill(match: re.Match[str]) -> str:
        value = lookup_metadata(metadata, match[1])
        text = match[2].strip() if value is None else _as_text(value)
        budget[0] -= len(text)
        if budget[0] < 0:
            raise RenderedTooLong(f"the text with its placeholders filled is over {max_length} characters")
        return text

    rendered = _PLACEHOLDER.sub(fill, template)
    if max_length is not None and len(rendered) > max_length:
        raise RenderedTooLong(f"the text with its placeholders filled is over {max_length} characters")
    return rendered
