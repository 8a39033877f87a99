"""What a pydantic `ValidationError` says, in the words every caller shows: field, type, message.

The token server answers them as a 422's `details`, the character loader lists them per
file. Never the offending value: a request or a file may carry a secret.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


def error_field(error: Any, *, root: str) -> str:
    """The dotted path of one error's field (`form.fields.0.name`), or `root` for the whole input."""
    return ".".join(str(part) for part in error["loc"]) or root


def error_message(error: Any) -> str:
    """One error's message, without pydantic's `Value error, ` prefix on a validator's own words."""
    return str(error["msg"]).removeprefix("Value error, ")


def validation_problems(exc: ValidationError, *, root: str) -> list[dict[str, str]]:
    """One `{field, type, message}` per error, in pydantic's order; `root` names the whole input."""
    return [
        {"field": error_field(err, root=root), "type": err["type"], "message": error_message(err)}
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
