"""The widget in a real call: Debian's Chromium, the real livekit-server, the real worker.

A customer's page on its own origin embeds the one tag under the strict CSP the
docs give. Chromium's fake microphone plays an espeak-ng WAV (a long silence, so the
greeting is over, then the user's question). The test checks what the user sees and
hears: the greeting's audio playing with its inbound bytes growing, the agent's
states, both sides of the transcript, the form answer, mute, hang-up, and the words
the widget finds when the agent or the network goes away. Screenshots of each state
go to test-artifacts/widget/.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from testkit.browser.browser import ConsoleWatch, screenshot
from testkit.e2e.browser_call import (
    AUDIO_PLAYING,
    LAUNCHER,
    LEAD_SILENCE,
    TRACK_PEER_CONNECTIONS,
    Site,
    chromium_with_microphone,
    ended,
    inbound_bytes,
    microphone_wav,
    more,
    open_shop,
    sent_packets,
    shop_call,
    widget,
)
from testkit.e2e.stack import Stack, no_voice_env, run_stack
from testkit.support_call import TRANSCRIPTS, support_script
from testkit.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


async def _call(stack: Stack, site: Site, browser: Browser) -> tuple[Page, ConsoleWatch, float]:
    """Open the shop, start the call with the keyboard, and wait until the greeting was heard."""
    page, console = await open_shop(browser, site)
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name=LAUNCHER)).to_be_focused()
    started = time.monotonic()
    await page.keyboard.press("Enter")
    status = widget(page).get_by_role("status")
    await expect(status).to_have_text("Speaking", timeout=60_000)
    await screenshot(page, "20-call-greeting")
    before = await inbound_bytes(page)
    await wait_until(lambda: page.evaluate(AUDIO_PLAYING), 30, "the agent's audio to play")
    await asyncio.sleep(1.0)
    assert await inbound_bytes(page) > before  # audio keeps arriving through the SFU
    log = widget(page).get_by_role("log", name="Transcript")
    await expect(log).to_contain_text("Hi Ada, I'm Sam from support.", timeout=30_000)
    await expect(status).to_have_text("Listening", timeout=60_000)
    return page, console, started


async def test_a_call_in_the_browser(tmp_path: Path, voice_service) -> None:
    async with shop_call(tmp_path, voice_service.url) as (stack, site, browser):
        page, console, started = await _call(stack, site, browser)
        assert site.grants == 1
        heard_greeting = time.monotonic() - started
        assert heard_greeting < LEAD_SILENCE, (
            "the greeting ran into the user's question; lengthen LEAD_SILENCE"
        )
        status = widget(page).get_by_role("status")
        log = widget(page).get_by_role("log", name="Transcript")

        # the user's recorded question reaches the agent, which looks the order up and answers
        await wait_until(lambda: stack.deepgram.finals, 60, "the user's speech at the agent's STT")
        await expect(status).to_have_text("Thinking…", timeout=30_000)
        await expect(log).to_contain_text(TRANSCRIPTS[0], timeout=30_000)
        await expect(log).to_contain_text("Your order A123 shipped yesterday.", timeout=60_000)
        await expect(widget(page).get_by_text("ada@example.com")).to_be_visible(timeout=30_000)
        assert stack.orders.calls and stack.orders.calls[0]["customer_id"] == "u-42"  # the grant's word
        await expect(status).to_have_text("Listening", timeout=60_000)
        await screenshot(page, "21-call-transcript-and-form")

        # mute: the agent stops receiving the microphone; unmute resumes it
        mute = widget(page).get_by_role("button", name="Mute microphone")
        await mute.focus()
        await page.keyboard.press("Enter")
        await expect(mute).to_have_attribute("aria-pressed", "true")
        await expect(status).to_contain_text("microphone off")
        await screenshot(page, "22-call-muted")
        await asyncio.sleep(1.0)
        muted_from = await sent_packets(page)
        await asyncio.sleep(3.0)
        assert await sent_packets(page) == muted_from  # the microphone is stopped: nothing leaves the page
        await page.keyboard.press("Enter")
        await expect(mute).to_have_attribute("aria-pressed", "false")
        await wait_until(
            lambda: more(sent_packets(page), muted_from + 50), 15, "the microphone's audio after unmuting"
        )

        # hang up: the room is left, the session ends and its slot is free
        await widget(page).get_by_role("button", name="Hang up").click()
        await expect(status).to_have_text("Call ended")
        await expect(widget(page).get_by_role("button", name="Call again")).to_be_visible()
        await screenshot(page, "23-call-ended")
        (session,) = (await stack.get("/v1/sessions"))["sessions"]
        await wait_until(ended(stack, session["session_id"]), 30, "the session to end")
        assert await page.evaluate("window.violations") == []
        assert console.unexpected() == []


@pytest.mark.parametrize("fault", ["agent", "network"])
async def test_the_widget_says_what_went_wrong(tmp_path: Path, voice_service, fault: str) -> None:
    async with shop_call(tmp_path, voice_service.url) as (stack, site, browser):
        page, console, _ = await _call(stack, site, browser)
        if fault == "agent":
            await asyncio.to_thread(stack.workers[0].kill)
            expected = "The agent left the call."
        else:
            await asyncio.to_thread(stack.livekit.kill)
            expected = "the connection to the voice server was lost"
        alert = widget(page).get_by_role("alert")
        await expect(alert).to_contain_text(expected, timeout=90_000)
        again = widget(page).get_by_role("button", name="Call again" if fault == "agent" else "Try again")
        await expect(again).to_be_visible()
        await expect(again).to_be_focused()
        await screenshot(page, f"24-call-{fault}-gone")
        # nothing spins: the status says the call is over
        assert await widget(page).get_by_role("status").inner_text() in ("Call ended", "Call failed")
        assert await page.evaluate("window.violations") == []
        noted = [json.dumps(e) for e in console.errors]
        assert all(
            "livekit" in e.lower() or "websocket" in e.lower() or "Failed to load" in e for e in noted
        ), noted


async def test_a_text_chat_in_the_browser_needs_no_microphone_and_no_voice(tmp_path: Path) -> None:
    # no voice service, no speech recognition, and a browser that refuses any microphone request
    async with shop_call(tmp_path, None, worker_env=no_voice_env(tmp_path)) as (stack, site, browser):
        site.attributes = 'data-mode="text"'
        page, console = await open_shop(browser, site)
        await page.get_by_role("button", name="Start a chat: Sam").click()
        log = widget(page).get_by_role("log", name="Transcript")
        await expect(log).to_contain_text("Hi Ada, I'm Sam from support.", timeout=60_000)
        box = widget(page).get_by_role("textbox")
        await expect(box).to_be_focused(timeout=30_000)
        await box.fill("Where is my order A123?")
        await page.keyboard.press("Enter")
        await expect(log).to_contain_text("Where is my order A123?")
        await expect(log).to_contain_text("Your order A123 shipped yesterday.", timeout=60_000)
        await expect(widget(page).get_by_text("ada@example.com")).to_be_visible(timeout=30_000)
        await screenshot(page, "25-text-chat")
        assert await page.evaluate("window.__pcs.every((pc) => pc.getSenders().every((s) => !s.track))")
        (session,) = (await stack.get("/v1/sessions"))["sessions"]
        typed = [e for e in await stack.events(session["session_id"], "transcript") if e["role"] == "user"]
        assert [(e["text"], e["source"]) for e in typed] == [("Where is my order A123?", "text")]
        assert await page.evaluate("window.violations") == []
        assert console.unexpected() == []


async def test_the_demo_page_in_a_real_call(tmp_path: Path, voice_service) -> None:
    wav = microphone_wav(tmp_path / "user.wav")
    async with (
        run_stack(
            tmp_path, voice_url=voice_service.url, script=support_script, transcripts=TRANSCRIPTS, origin="*"
        ) as stack,
        chromium_with_microphone(wav, secure=stack.token_server_url) as browser,
    ):
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        console = ConsoleWatch().attach(page)
        await page.add_init_script(TRACK_PEER_CONNECTIONS)
        await page.goto(f"{stack.token_server_url}/")
        sam = page.get_by_role("list", name="Characters").locator(":scope > li").filter(has_text="Sam")
        await sam.get_by_role("textbox", name="Metadata (JSON object)").fill('{"user_name": "Grace"}')
        await sam.get_by_role("button", name="Call Sam").click()
        card = sam.locator("oshara-widget")
        # the page's own metadata fills the greeting (never a tool argument)
        await expect(card.get_by_role("log", name="Transcript")).to_contain_text(
            "Hi Grace, I'm Sam from support.", timeout=60_000
        )
        await wait_until(lambda: page.evaluate(AUDIO_PLAYING), 30, "the greeting's audio to play")
        assert await inbound_bytes(page) > 0
        await screenshot(page, "26-demo-live-call")
        await card.get_by_role("button", name="Hang up").click()
        await expect(card.get_by_role("status")).to_have_text("Call ended")
        (session,) = (await stack.get("/v1/sessions"))["sessions"]
        await wait_until(ended(stack, session["session_id"]), 30, "the session to end")
        assert console.unexpected() == []
