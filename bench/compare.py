"""Print how the latest results differ from the last recorded run, metric by metric.

`python -m bench.compare [SECTION ...]` reads bench/results/<section>.json (the latest
run) and bench/recorded/<section>.json (the run kept with docs/benchmarks.md).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import RESULTS, ROOT, table

RECORDED = ROOT / "bench" / "recorded"
# Fields that name a row in a list of results rather than measure it.
_LABELS = ("target", "database", "connections", "page", "model", "name", "case", "concurrency", "length")
_SKIP = ("machine", "at", "section")


def _label(item: dict[str, Any], index: int) -> str:
    parts = [f"{k}={item[k]}" for k in _LABELS if k in item and not isinstance(item[k], dict | list)]
    return ",".join(parts) or str(index)


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """Every number in a result, keyed by its path (list items by their labels)."""
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield prefix, float(value)
    elif isinstance(value, dict):
        for key, inner in value.items():
            if prefix == "" and key in _SKIP:
                continue
            if key in _LABELS and isinstance(inner, int | float):
                continue
            yield from flatten(inner, f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            label = _label(item, i) if isinstance(item, dict) else str(i)
            yield from flatten(item, f"{prefix}[{label}]")


def _load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def compare(sections: list[str]) -> None:
    for name in sections:
        now, then = _load(RESULTS / f"{name}.json"), _load(RECORDED / f"{name}.json")
        if now is None:
            continue
        if then is None:
            print(f"{name}: no recorded run to compare with (python -m bench --record keeps one)")
            continue
        old = dict(flatten(then))
        rows = []
        for key, value in flatten(now):
            if key in old:
                before = old[key]
                change = (value - before) / before * 100 if before else 0.0
                rows.append([key, f"{before:.4g}", f"{value:.4g}", f"{change:+.0f}%"])
        print(f"{name} (recorded {then.get('at', '?')}, now {now.get('at', '?')})")
        print(table(["metric", "recorded", "now", "change"], rows) if rows else "(nothing comparable)")


if __name__ == "__main__":
    compare(sys.argv[1:] or [p.stem for p in sorted(RESULTS.glob("*.json"))])
