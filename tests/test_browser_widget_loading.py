"""The one tag weighs almost nothing until someone calls: bytes on the wire in Chromium.

A customer's page on its own origin embeds the tag. Before any click only the loader
(`/widget.js`, brotli) comes from the token server, at most 40 KB on the wire; the
call chunk (livekit-client) arrives on the click, imported across origins, cached
immutable, and a second visit fetches neither again.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, expect

from testkit.browser.browser import ConsoleWatch, chromium
from testkit.browser.expectations import LAUNCHER, VOICE_SERVER_MESSAGE, voice_server_failures
from testkit.browser.servers import Stack, running_stack
from testkit.browser.wire import WireLog, total

pytestmark = pytest.mark.browser

LOADER_BUDGET = 40 * 1024
CHUNK = re.compile(r"/widget/call\.[A-Z0-9]+\.js$")


@pytest.fixture
async def stack(tmp_path, livekit) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path, livekit) as s:
        yield s


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def test_only_the_loader_before_the_click_and_the_chunk_on_it(stack: Stack, browser: Browser):
    stack.host_pages.add(
        "/shop",
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Shop</title>"
        "<link rel='icon' href='data:,'></head><body><h1>Shop</h1>"
        f"<script src='{stack.token_server}/widget.js' data-agent='support-bot' async></script>"
        "</body></html>",
    )
    context = await browser.new_context(viewport={"width": 900, "height": 640})
    page = await context.new_page()
    console = ConsoleWatch().attach(page)
    wire = await WireLog.attach(page)
    await page.goto(f"{stack.host_127}/shop")
    launcher = page.get_by_role("button", name=LAUNCHER)
    await expect(launcher).to_be_visible()
    await page.wait_for_load_state("networkidle")

    before = wire.to(stack.token_server)
    (loader,) = before
    assert loader.url == f"{stack.token_server}/widget.js"
    assert loader.headers["content-encoding"] == "br"
    assert 0 < loader.wire_bytes <= LOADER_BUDGET
    assert "max-age=300" in loader.headers["cache-control"] and loader.headers["etag"].startswith('"')

    mark = wire.mark()
    await launcher.click()
    await expect(page.locator("oshara-widget").get_by_role("alert")).to_have_text(VOICE_SERVER_MESSAGE)
    (chunk,) = [r for r in wire.to(stack.token_server, mark) if CHUNK.search(r.url)]
    assert chunk.status == 200
    assert chunk.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert chunk.headers["content-encoding"] == "br"
    assert chunk.headers["access-control-allow-origin"] == "*"  # a module import across origins
    assert chunk.wire_bytes > 5 * loader.wire_bytes  # livekit-client is in it, not in the loader

    # A second visit: the loader is fresh for five minutes and the chunk for a year.
    mark = wire.mark()
    await page.goto(f"{stack.host_127}/shop")
    await page.get_by_role("button", name=LAUNCHER).click()
    await expect(page.locator("oshara-widget").get_by_role("alert")).to_have_text(VOICE_SERVER_MESSAGE)
    again = [r for r in wire.to(stack.token_server, mark) if "/widget" in r.url]
    assert total(again) == 0, again
    assert console.unexpected(*voice_server_failures(stack)) == []
    await context.close()


async def test_the_pointer_reaching_the_button_starts_the_import(stack: Stack, browser: Browser):
    stack.host_pages.add(
        "/hover",
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Hover</title>"
        "<link rel='icon' href='data:,'></head><body>"
        f"<script src='{stack.token_server}/widget.js' data-agent='support-bot' async></script>"
        "</body></html>",
    )
    page = await browser.new_page()
    await page.goto(f"{stack.host_127}/hover")
    launcher = page.get_by_role("button", name=LAUNCHER)
    async with page.expect_response(lambda r: CHUNK.search(r.url) is not None) as fetched:
        await launcher.hover()
    assert (await fetched.value).status == 200
    assert await page.evaluate("Oshara.widget.state.state") == "idle"  # a hint, not a call
