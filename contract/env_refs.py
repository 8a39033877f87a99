"""`${ENV_NAME}` references in a character's values, resolved from a process's environment.

A character file never holds a secret itself: an MCP header (resolved on the worker) or
the webhook secret (resolved on the token server) names an environment variable as
`${ENV_NAME}`, anywhere in the value. A variable that is unset *or empty* counts as
missing: an empty secret is never sent, and the caller says which variables to set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class MissingEnvironment(ValueError):
    """A value references environment variables that are unset or empty; `names` lists them."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(f"environment variables not set: {', '.join(names)}")
        self.names = names


def missing_env_refs(values: Iterable[str], environ: Mapping[str, str]) -> list[str]:
    """The variables `values` reference that are unset or empty in `environ`, sorted."""
    return sorted({m[1] for v in values for m in ENV_REF.finditer(v) if not environ.get(m[1])})


def resolve_env_refs(value: str, environ: Mapping[str, str]) -> str:
    """`value` with every `${NAME}` replaced from `environ`; other text as it is.

    Raises:
        MissingEnvironment: some referenced variable is unset or empty.
    """
    if missing := missing_env_refs([value], environ):
        raise MissingEnvironment(missing)
    return ENV_REF.sub(lambda m: environ[m[1]], value)
