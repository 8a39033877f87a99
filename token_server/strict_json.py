"""Strict JSON in and out: what the token server accepts in a body and writes back.

Python's `json` module is lenient where a stored record must not be: it reads
`NaN`, `Infinity` and `1e400` (as inf), lets the last of two equal keys win, and
keeps NUL and other control characters in strings (PostgreSQL refuses NUL). Every
request body goes through `loads`, and every response and stored value through
`dumps`, so none of that gets in or out.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn

from aiohttp import web

# Containers inside containers, the body itself counting as one: `{"metadata": {}}` is 2.
MAX_DEPTH = 32

# C0 controls but tab, LF and CR; and lone UTF-16 surrogates, which no encoder accepts.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class BodyRefused(ValueError):
    """A body that is JSON to Python but not something the server will store.

    `status` is 400 for what strict JSON does not allow (a non-finite number, a key
    given twice) and 422 for a field the server refuses (a control character, too
    deep); `field` is the dotted path of the bad value, when known.
    """

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


def _non_finite(name: str) -> NoReturn:
    raise BodyRefused(
        400, "non_finite_number", f"The body has {name}, which JSON does not allow: send a finite number."
    )


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        _non_finite(f"the number {text[:40]}, too large for a double,")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise BodyRefused(400, "duplicate_key", f"The key {key[:64]!r} is given twice in one object.")
        obj[key] = value
    return obj


_DECODER = json.JSONDecoder(
    parse_float=_parse_float, parse_constant=_non_finite, object_pairs_hook=_unique_keys
)


def _check(value: Any, path: list[str], depth: int) -> None:
    if isinstance(value, str):
        _check_text(value, path)
        return
    if not isinstance(value, dict | list):
        return
    if depth > MAX_DEPTH:
        raise BodyRefused(
            422,
            "nesting_too_deep",
            f"The body is nested more than {MAX_DEPTH} levels deep.",
            field=".".join(path) or "(body)",
        )
    items = value.items() if isinstance(value, dict) else ((str(i), v) for i, v in enumerate(value))
    for key, item in items:
        if isinstance(value, dict):
            _check_text(key, path, is_key=True)
        _check(item, [*path, key[:64]], depth + 1)


def _check_text(text: str, path: list[str], *, is_key: bool = False) -> None:
    field = ".".join(path) or "(body)"
    what = f"a key in {field}" if is_key else field
    # Never echo the text: it may be a credential (an MCP header value).
    if _CONTROL.search(text):
        raise BodyRefused(
            422,
            "control_character",
            f"{what} contains a control character (only tab, LF and CR are allowed).",
            field=field,
        )
    if _SURROGATE.search(text):
        raise BodyRefused(422, "invalid_unicode", f"{what} contains a lone UTF-16 surrogate.", field=field)


def loads(data: bytes) -> Any:
    """The strict JSON value of `data`.

    Raises:
        BodyRefused: a non-finite number, a repeated key, a control character or a
            lone surrogate in any string or key, or nesting over `MAX_DEPTH`.
        ValueError, UnicodeDecodeError: not JSON at all.
        RecursionError: nesting so deep that the parser gave up.
    """
    # As `json.loads` reads bytes: UTF-8, -16 or -32, told apart by the first bytes.
    value = _DECODER.decode(data.decode(json.detect_encoding(data), "surrogatepass"))
    _check(value, [], 1)
    return value


def dumps(value: Any) -> str:
    """`value` as strict JSON; a non-finite float raises ValueError rather than write `NaN`."""
    return json.dumps(value, allow_nan=False)


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response that is always strict JSON."""
    return web.json_response(data, status=status, headers=headers, dumps=dumps)
