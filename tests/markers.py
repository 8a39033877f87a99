"""The pytest plugin that makes every test module say what kind of test it is.

A run can then pick its kinds (`-m unit`, `-m "not e2e"`). `postgres` says what some
tests need, not what they are; `gpu` is both (real weights on a GPU box, nowhere else).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

CATEGORY_MARKERS = frozenset({"unit", "integration", "voice", "browser", "e2e", "gpu"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse the run when a test module declares none of `CATEGORY_MARKERS` in its `pytestmark`."""
    unmarked = set()
    for item in items:
        module = item.getparent(pytest.Module)
        if module is None:
            continue
        marks = getattr(module.obj, "pytestmark", [])
        names = {m.name for m in (marks if isinstance(marks, list) else [marks])}
        if not names & CATEGORY_MARKERS:
            unmarked.add(Path(inspect.getfile(module.obj)))
    if unmarked:
        listed = ", ".join(sorted(_shown(path, config.rootpath) for path in unmarked))
        raise pytest.UsageError(
            f"test modules without a category marker ({', '.join(sorted(CATEGORY_MARKERS))}): {listed}; "
            "add `pytestmark = pytest.mark.<category>`"
        )


def _shown(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
