"""The demo page (`GET /` on the token server) in headless Chromium."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, expect

from testkit.browser.browser import ConsoleWatch, chromium, screenshot
from testkit.browser.expectations import VOICE_SERVER_MESSAGE, voice_server_failures
from testkit.browser.servers import Stack, running_stack

pytestmark = pytest.mark.browser


@pytest.fixture
async def stack(tmp_path, livekit) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path, livekit) as s:
        yield s


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def test_demo_lists_characters_and_calls_with_metadata(stack: Stack, browser: Browser):
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    console = ConsoleWatch().attach(page)
    await page.goto(f"{stack.token_server}/")
    cards = page.get_by_role("list", name="Characters").locator(":scope > li")
    await expect(cards).to_have_count(4)
    await expect(page.get_by_role("status").first).to_have_text("4 active characters.")
    intake = cards.filter(has_text="Riley, Intake Assistant")
    await expect(intake.get_by_role("listitem").filter(has_text="full_name (required)")).to_be_visible()

    sam = cards.filter(has_text="Sam from Support")
    metadata = sam.get_by_role("textbox", name="Metadata (JSON object)")

    # Bad JSON is explained next to the field and starts nothing.
    await metadata.fill("{user_name: Grace}")
    await sam.get_by_role("button", name="Call Sam from Support").click()
    await expect(sam.get_by_role("alert")).to_contain_text("Metadata is not valid JSON")
    assert await stack.livekit.new_rooms() == {}

    await metadata.fill('{"user_name": "Grace", "tier": 2}')
    async with page.expect_request(lambda r: r.url.endswith("/v1/sessions")) as sent:
        await sam.get_by_role("button", name="Call Sam from Support").click()
    body = json.loads((await sent.value).post_data or "{}")
    assert body == {
        "agent": "support-bot",
        "origin_url": f"{stack.token_server}/",
        "metadata": {"user_name": "Grace", "tier": 2},
    }
    await expect(sam.locator("oshara-widget").get_by_role("alert")).to_have_text(VOICE_SERVER_MESSAGE)
    await sam.locator("details.events summary").click()
    await expect(sam.locator(".event-log")).to_contain_text('session {"session_id"')
    await screenshot(page, "10-demo-page")

    (room,) = (await stack.livekit.new_rooms()).values()
    # a page's own metadata is the user's word: kept apart, never bound into tools
    config = json.loads(room.metadata)
    assert config["unverified_metadata"] == {"user_name": "Grace", "tier": 2}
    assert config["metadata"] == {}
    assert console.unexpected(*voice_server_failures(stack)) == []
