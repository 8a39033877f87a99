"""Debian's Chromium driven by Playwright, with the console watched and screenshots kept."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import Browser, ConsoleMessage, Error, Page, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "widget"

BASE_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
    "--use-fake-device-for-media-stream",
]
# Grants the microphone without a prompt; leave it out to have requests refused.
FAKE_UI_ARG = "--use-fake-ui-for-media-stream"


def require_chromium() -> None:
    """Fail, saying what to install, when Debian's Chromium is missing."""
    if not CHROMIUM.exists():
        raise RuntimeError(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium "
            "(`apt-get install -y chromium`)."
        )


@asynccontextmanager
async def chromium(
    *, grant_microphone: bool = True, extra_args: Sequence[str] = ()
) -> AsyncIterator[Browser]:
    """Headless Debian Chromium (never a Playwright-downloaded browser)."""
    require_chromium()
    args = [*BASE_ARGS, *([FAKE_UI_ARG] if grant_microphone else []), *extra_args]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=args, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class ConsoleWatch:
    """Console errors and uncaught exceptions of a page, minus named expected ones."""

    errors: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # every console line, of any level

    def attach(self, page: Page) -> ConsoleWatch:
        """Start collecting from `page`."""
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        return self

    def _on_console(self, message: ConsoleMessage) -> None:
        self.messages.append(message.text)
        if message.type == "error":
            self.errors.append(f"{message.text} @ {message.location.get('url', '')}")

    def unexpected(self, *expected: str) -> list[str]:
        """Errors matching none of the `expected` regular expressions."""
        return [e for e in self.errors if not any(re.search(p, e) for p in expected)]


def failed_load(url: str, status: int) -> str:
    """The pattern of Chromium's console error for an HTTP error answer from `url`."""
    return rf"^Failed to load resource: the server responded with a status of {status} .* @ {re.escape(url)}$"


async def screenshot(page: Page, name: str) -> Path:
    """Save a screenshot of the page as test-artifacts/widget/<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path))
    return path


__all__ = ["CHROMIUM", "ConsoleWatch", "Error", "chromium", "failed_load", "screenshot"]
