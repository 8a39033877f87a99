"""The form tool: the LLM records the user's answers, validated field by field.

One tool, `record_answer(field, value)`, whose `field` is an enum of the form's
field names. A value that does not fit the field's type or choices is refused with
a sentence the LLM can act on (ask again, or correct the format); an accepted one
is reported at once as `FormUpdated` and published to the room for the web widget.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from livekit.agents import llm

from contract.events import FormUpdated, ToolCall
from contract.model import FormConfig, FormField

from .reporting import Report

logger = logging.getLogger("oshara.agent.forms")

FORM_TOPIC = "oshara.form"
"""Text-stream topic on which accepted answers reach the room, as JSON {"field", "value"}."""

Publish = Callable[[dict[str, Any]], Awaitable[None]]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}
_MAX_TEXT = 1000


class InvalidAnswer(ValueError):
    """A value that does not fit its field; the message is meant for the LLM."""


def validate_answer(field: FormField, raw: Any) -> Any:
    """`raw` converted to the field's type.

    Raises:
        InvalidAnswer: the value does not fit the field's type or choices.
    """
    text = str(raw).strip() if raw is not None else ""
    if not text:
        raise InvalidAnswer(f"'{field.name}' needs a value; ask the user for it.")
    if len(text) > _MAX_TEXT:
        raise InvalidAnswer(f"'{field.name}' is too long; keep it under {_MAX_TEXT} characters.")
    kind = field.type
    if kind == "string":
        return text
    if kind == "number":
        try:
            value = float(text.replace(",", ""))
        except ValueError:
            raise InvalidAnswer(f"'{field.name}' must be a number, like 42 or 3.5.") from None
        if not math.isfinite(value):
            raise InvalidAnswer(f"'{field.name}' must be a finite number.")
        return value
    if kind == "integer":
        try:
            number = float(text.replace(",", ""))
        except ValueError:
            raise InvalidAnswer(f"'{field.name}' must be a whole number, like 42.") from None
        if not math.isfinite(number) or number != int(number):
            raise InvalidAnswer(f"'{field.name}' must be a whole number, like 42.")
        return int(number)
    if kind == "boolean":
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise InvalidAnswer(f"'{field.name}' must be yes or no.")
    if kind == "email":
        if not _EMAIL.match(text):
            raise InvalidAnswer(
                f"'{text}' is not an email address; ask the user to spell it, like name@example.com."
            )
        local, domain = text.rsplit("@", 1)
        return f"{local}@{domain.lower()}"
    if kind == "phone":
        digits = re.sub(r"[\s().\-]", "", text)
        if not re.fullmatch(r"\+?\d{7,15}", digits):
            raise InvalidAnswer(f"'{text}' is not a phone number; it needs 7 to 15 digits.")
        return digits
    if kind == "date":
        try:
            return dt.date.fromisoformat(text).isoformat()
        except ValueError:
            raise InvalidAnswer(
                f"'{text}' is not a date in the form YYYY-MM-DD; convert what the user said, "
                "or ask them again."
            ) from None
    if kind == "choice":
        for choice in field.choices or []:
            if choice.lower() == text.lower():
                return choice
        raise InvalidAnswer(f"'{field.name}' must be one of: {', '.join(field.choices or [])}.")
    raise InvalidAnswer(f"'{field.name}' has an unsupported type.")


def _describe(field: FormField) -> str:
    line = f"- {field.name} ({field.type}{', required' if field.required else ''})"
    if field.choices:
        line += f", one of: {', '.join(field.choices)}"
    if field.description:
        line += f": {field.description}"
    return line


class FormSession:
    """The answers of one session's form, and the tool that records them."""

    def __init__(self, form: FormConfig, *, report: Report, publish: Publish | None = None) -> None:
        self._form = form
        self._fields = {f.name: f for f in form.fields}
        self._report = report
        self._publish = publish
        self.answers: dict[str, Any] = {}

    def missing_required(self) -> list[str]:
        """Required fields still without an answer."""
        return [f.name for f in self._form.fields if f.required and f.name not in self.answers]

    def instructions(self) -> str:
        """A note for the system prompt listing the fields."""
        lines = "\n".join(_describe(f) for f in self._form.fields)
        return (
            "During the call, fill in this form. Record each answer with the record_answer tool as "
            "soon as the user gives it; if the tool refuses a value, ask again or fix its format.\n" + lines
        )

    def tool(self) -> llm.RawFunctionTool:
        """The `record_answer` tool."""
        schema = {
            "name": "record_answer",
            "description": "Record the user's answer to one form field.\n"
            + "\n".join(_describe(f) for f in self._form.fields),
            "parameters": {
                "type": "object",
                "properties": {
                    "field": {
                        "type": "string",
                        "enum": list(self._fields),
                        "description": "The form field being answered.",
                    },
                    "value": {
                        "type": "string",
                        "description": "The answer as text: numbers as digits, yes/no for booleans, "
                        "dates as YYYY-MM-DD.",
                    },
                },
                "required": ["field", "value"],
                "additionalProperties": False,
            },
        }
        return llm.function_tool(self._record_answer, raw_schema=schema)

    async def _record_answer(self, raw_arguments: dict[str, Any]) -> str:
        started = time.monotonic()
        name = str(raw_arguments.get("field", ""))
        arguments = {"field": name, "value": raw_arguments.get("value")}
        field = self._fields.get(name)
        try:
            if field is None:
                raise InvalidAnswer(
                    f"There is no form field '{name}'; use one of: {', '.join(self._fields)}."
                )
            value = validate_answer(field, raw_arguments.get("value"))
        except InvalidAnswer as exc:
            self._report(
                ToolCall(
                    tool="record_answer",
                    duration_ms=(time.monotonic() - started) * 1000,
                    ok=False,
                    error=str(exc),
                    arguments=arguments,
                )
            )
            return f"Not recorded. {exc}"
        self.answers[name] = value
        self._report(FormUpdated(field=name, value=value))
        self._report(
            ToolCall(
                tool="record_answer",
                duration_ms=(time.monotonic() - started) * 1000,
                ok=True,
                arguments=arguments,
            )
        )
        if self._publish is not None:
            try:
                await self._publish({"field": name, "value": value})
            except Exception:
                logger.warning("could not publish a form answer to the room", exc_info=True)
        missing = self.missing_required()
        still = f" Still needed: {', '.join(missing)}." if missing else " Every required field is filled."
        return f"Recorded {name}.{still}"
