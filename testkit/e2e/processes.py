"""The e2e tests' real processes: the token server, the agent worker and the voice service.

Each runs as `python -m …` with its own environment and a log file in the test's
directory; a test reads the log when something fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class Process:
    """A child process with its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log_path = log_path
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(  # noqa: S603 - our own commands
                [sys.executable, *self.args],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a signal to it does not reach pytest, and it takes its children down
            )
        return self

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def wait_for_log(self, pattern: str, timeout: float, *, after: int = 0) -> re.Match[str]:
        """Wait until the log (from character `after` on) matches `pattern`."""
        regex = re.compile(pattern)
        return self._wait(lambda: regex.search(self.log(), after), f"log {pattern!r}", timeout)

    def wait_for_http(self, url: str, timeout: float) -> None:
        """Wait until `url` answers 200."""

        def answers() -> bool:
            with (
                contextlib.suppress(urllib.error.URLError, OSError),
                urllib.request.urlopen(url, timeout=1) as resp,  # noqa: S310 - a local URL
            ):
                return resp.status == 200
            return False

        self._wait(answers, f"answer {url}", timeout)

    def _wait(self, check: Callable[[], T], what: str, timeout: float) -> T:
        """Poll `check` until it is truthy; fail with the log if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            if result := check():
                return result
            if not self.running:
                raise AssertionError(f"{self.name} exited before it did {what}:\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not {what} in {timeout} s:\n{self.log()[-4000:]}")
            time.sleep(0.1)

    def signal_group(self, sig: int) -> None:
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)

    def kill(self) -> None:
        """SIGKILL the process and everything it started (its job processes, its voice service)."""
        if self.popen is None:
            return
        self.signal_group(signal.SIGKILL)
        self.popen.wait()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`; its children go too."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        self.kill()
