"""Counts what the API fuzz test sent, and says so at the end of the run, with or without -s."""

from __future__ import annotations

from collections import Counter

import pytest

SENT: Counter[str] = Counter()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line: generated cases and the HTTP requests the server answered, by status class."""
    if not SENT:
        return
    by_status = ", ".join(f"{k}: {v}" for k, v in sorted(SENT.items()) if k.endswith("xx"))
    terminalreporter.write_sep("-", "API fuzz (schemathesis)")
    terminalreporter.write_line(
        f"{SENT['cases']} generated test cases; the token server answered {SENT['requests']} requests "
        f"({by_status})"
    )
