"""The embeddable widget in headless Chromium, against the real token server on loopback.

Each test serves a customer's page on its own origin embedding the one tag, clicks
the call button and checks what the caller sees, what the token server was asked,
and that the page's console shows no errors other than the named network failures
the scenario causes (Chromium logs every HTTP error answer and failed websocket).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from html import escape
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from playwright.async_api import Browser, Page, expect

from testkit.browser.browser import ConsoleWatch, chromium, failed_load, screenshot
from testkit.browser.expectations import (
    LAUNCHER,
    VOICE_SERVER_MESSAGE,
    session_error,
    voice_server_failures,
    websocket_failure,
)
from testkit.browser.servers import RETRY_AFTER_SECONDS, Stack, running_stack

pytestmark = pytest.mark.browser


@pytest.fixture
async def stack(tmp_path, livekit) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path, livekit) as s:
        yield s


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


def embed(
    stack: Stack, path: str, *, head: str = "", headers: dict[str, str] | None = None, **data: str
) -> None:
    """Serve a customer page at `path` (on every host origin) carrying the one widget tag."""
    attrs = " ".join(f'data-{k.replace("_", "-")}="{escape(v)}"' for k, v in data.items())
    stack.host_pages.add(
        path,
        f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Customer site</title>
<link rel="icon" href="data:,">{head}</head>
<body><h1>Acme Pharmacy</h1><p>Questions about your order? Talk to us.</p>
<script src="{stack.token_server}/widget.js" {attrs} async></script>
</body></html>""",
        headers,
    )


async def open_page(browser: Browser, url: str) -> tuple[Page, ConsoleWatch]:
    page = await browser.new_page(viewport={"width": 900, "height": 640})
    watch = ConsoleWatch().attach(page)
    await page.goto(url)
    await page.wait_for_function("window.Oshara && window.Oshara.widget")
    return page, watch


def widget(page: Page):
    return page.locator("oshara-widget")


async def test_call_from_allowed_origin_carries_context_and_tries_livekit(stack: Stack, browser: Browser):
    embed(stack, "/shop", agent="support-bot", metadata='{"plan": "gold"}', greeting="Hello from the shop")
    stack.voice_server.delay_seconds = 1.5  # long enough to see "Connecting…"
    page, console = await open_page(browser, f"{stack.host_127}/shop")
    launcher = page.get_by_role("button", name=LAUNCHER)
    await expect(launcher).to_be_visible()
    await screenshot(page, "01-idle")

    async with page.expect_request(lambda r: r.url.endswith("/v1/sessions") and r.method == "POST") as sent:
        await launcher.click()
    request = await sent.value
    body = json.loads(request.post_data or "{}")
    assert body == {
        "agent": "support-bot",
        "origin_url": f"{stack.host_127}/shop",
        "greeting": "Hello from the shop",
        "metadata": {"plan": "gold"},
    }
    response = await request.response()
    assert response is not None and response.status == 201
    grant = await response.json()

    status = widget(page).get_by_role("status")
    await expect(status).to_have_text("Connecting…")
    await expect(widget(page).get_by_role("button", name="Hang up")).to_be_focused()
    await screenshot(page, "02-connecting")

    await expect(widget(page).get_by_role("alert")).to_have_text(VOICE_SERVER_MESSAGE)
    await expect(status).to_have_text("Call failed")
    await expect(widget(page).get_by_role("button", name="Try again")).to_be_focused()
    await screenshot(page, "03-voice-server-unreachable")

    # The token server created the room with the page's context in its metadata...
    (room,) = (await stack.livekit.new_rooms()).values()
    config = json.loads(room.metadata)
    assert room.name == grant["room_name"]
    assert config["unverified_metadata"] == {"plan": "gold"} and config["metadata"] == {}
    assert config["greeting"] == "Hello from the shop"
    # ...and the widget tried to join LiveKit at livekit_url with the token it was given.
    first = urlsplit(stack.voice_server.requests[0])
    assert first.path in ("/rtc", "/rtc/v1")
    assert parse_qs(first.query)["access_token"] == [grant["token"]]
    assert console.unexpected(*voice_server_failures(stack)) == []


async def test_js_api_merges_metadata_and_reports_events(stack: Stack, browser: Browser):
    embed(stack, "/account", agent="support-bot", metadata='{"plan": "gold"}')
    page, console = await open_page(browser, f"{stack.host_127}/account")
    await page.evaluate(
        """() => {
            window.seen = [];
            for (const name of ["state", "session", "error", "ended"]) {
                Oshara.on(name, (payload) => window.seen.push([name, payload]));
            }
        }"""
    )
    async with page.expect_request(lambda r: r.url.endswith("/v1/sessions")) as sent:
        await page.evaluate("Oshara.start({metadata: {user_id: 'u-42'}, language: 'en-GB'})")
    body = json.loads((await sent.value).post_data or "{}")
    assert body["metadata"] == {"plan": "gold", "user_id": "u-42"}
    assert body["language"] == "en-GB"
    assert body["origin_url"] == f"{stack.host_127}/account"

    await expect(widget(page).get_by_role("alert")).to_have_text(VOICE_SERVER_MESSAGE)
    seen = await page.evaluate("window.seen")
    states = [payload["state"] for name, payload in seen if name == "state"]
    assert states == ["requesting_microphone", "starting", "connecting", "error"]
    (session,) = [payload for name, payload in seen if name == "session"]
    assert session["character_slug"] == "support-bot"
    assert session["session_id"] and [session["room_name"]] == list(await stack.livekit.new_rooms())
    (error,) = [payload for name, payload in seen if name == "error"]
    assert error == {"code": "voice_server_unreachable", "message": VOICE_SERVER_MESSAGE, "retryable": True}

    # end() after a failure is harmless; a new start() is a new session.
    await page.evaluate("Oshara.end()")
    assert console.unexpected(*voice_server_failures(stack)) == []


async def test_a_grant_from_the_sites_backend_carries_verified_context(stack: Stack, browser: Browser):
    stack.host_pages.grant_claims = {"agent": "support-bot", "metadata": {"user_id": "u-42"}}
    embed(stack, "/signed-in", agent="support-bot", grant_url="/oshara/grant", metadata='{"theme": "dark"}')
    page, console = await open_page(browser, f"{stack.host_127}/signed-in")
    async with page.expect_request(lambda r: r.url.endswith("/v1/sessions") and r.method == "POST") as sent:
        await page.get_by_role("button", name=LAUNCHER).click()
    request = await sent.value
    body = json.loads(request.post_data or "{}")
    (grant,) = stack.host_pages.grants  # fetched from the page's own site, just before the start
    assert body["grant"] == grant
    response = await request.response()
    assert response is not None and response.status == 201
    await expect(widget(page).get_by_role("alert")).to_have_text(VOICE_SERVER_MESSAGE)

    (room,) = (await stack.livekit.new_rooms()).values()
    config = json.loads(room.metadata)
    assert config["metadata"] == {"user_id": "u-42"}  # the site's word: binds the order tools
    assert config["unverified_metadata"] == {"theme": "dark"}  # the page's own
    assert grant not in await page.content()
    assert not [m for m in console.messages if grant in m]

    # "Try again" fetches a new grant: each starts one session
    async with page.expect_request(lambda r: r.url.endswith("/v1/sessions") and r.method == "POST") as again:
        await widget(page).get_by_role("button", name="Try again").click()
    assert json.loads((await again.value).post_data or "{}")["grant"] == stack.host_pages.grants[1] != grant
    await expect(widget(page).get_by_role("alert")).to_have_text(VOICE_SERVER_MESSAGE)
    assert console.unexpected(*voice_server_failures(stack)) == []


async def test_a_site_that_gives_no_grant_starts_no_session(stack: Stack, browser: Browser):
    stack.host_pages.grant_status = 401  # the visitor is not signed in on the site
    embed(stack, "/signed-out", agent="support-bot", grant_url="/oshara/grant")
    page, console = await open_page(browser, f"{stack.host_127}/signed-out")
    await page.get_by_role("button", name=LAUNCHER).click()
    await expect(widget(page).get_by_role("alert")).to_have_text(
        "This site could not give permission to start the call. Please try again."
    )
    assert await stack.livekit.new_rooms() == {}
    assert stack.voice_server.requests == []
    assert console.unexpected(failed_load(f"{stack.host_127}/oshara/grant", 401)) == []


async def test_disallowed_origin_shows_403_message(stack: Stack, browser: Browser):
    # http://localhost:* is an origin CORS answers (another character allows it),
    # but support-bot only allows http://127.0.0.1:*.
    embed(stack, "/elsewhere", agent="support-bot")
    page, console = await open_page(browser, f"{stack.host_localhost}/elsewhere")
    # Keyboard only: Tab to the call button, Enter to call.
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name=LAUNCHER)).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(widget(page).get_by_role("alert")).to_have_text("This site isn't allowed to use this agent.")
    await screenshot(page, "04-origin-not-allowed")
    assert await stack.livekit.new_rooms() == {}
    assert stack.voice_server.requests == []
    assert console.unexpected(session_error(stack, 403)) == []


async def test_origin_no_character_allows_is_refused_at_the_preflight(stack: Stack, browser: Browser):
    # CORS preflights are answered only for origins some active character allows, so
    # the browser never sends the POST and the widget sees a network failure; its
    # message says this site may not be set up, which is the likely cause.
    embed(stack, "/stranger", agent="support-bot")
    page, _ = await open_page(browser, f"{stack.host_stranger}/stranger")
    await page.get_by_role("button", name=LAUNCHER).click()
    await expect(widget(page).get_by_role("alert")).to_have_text(
        "Can't reach the call service. Check your internet connection and try again. "
        "If this keeps happening, this site may not be set up to use this agent.",
        timeout=5000,
    )
    assert await stack.livekit.new_rooms() == {}


async def test_full_character_shows_429_with_its_wait(stack: Stack, browser: Browser):
    # Take full-bot's only slot from outside the browser first.
    async with aiohttp.ClientSession() as http:
        taken = await http.post(
            f"{stack.token_server}/v1/sessions",
            json={"agent": "full-bot"},
            headers={"Origin": stack.host_127},
        )
        assert taken.status == 201
        taken_room = (await taken.json())["room_name"]
    embed(stack, "/busy", agent="full-bot")
    page, console = await open_page(browser, f"{stack.host_127}/busy")
    await page.get_by_role("button", name=LAUNCHER).click()
    await expect(widget(page).get_by_role("alert")).to_have_text(
        f"All agents are busy. Try again in {RETRY_AFTER_SECONDS} seconds."
    )
    await screenshot(page, "05-busy")
    assert list(await stack.livekit.new_rooms()) == [taken_room]  # the browser's start made none
    assert console.unexpected(session_error(stack, 429)) == []


async def test_unknown_agent_shows_404_message(stack: Stack, browser: Browser):
    embed(stack, "/typo", agent="suport-bot")
    page, console = await open_page(browser, f"{stack.host_127}/typo")
    await page.get_by_role("button", name=LAUNCHER).click()
    await expect(widget(page).get_by_role("alert")).to_have_text(
        "This agent doesn't exist or has been switched off."
    )
    await screenshot(page, "06-unknown-agent")
    assert console.unexpected(session_error(stack, 404)) == []


async def test_livekit_api_unreachable_shows_message(tmp_path, livekit, browser: Browser):
    async with running_stack(tmp_path, livekit, livekit_reachable=False) as stack:
        embed(stack, "/down", agent="support-bot")
        page, console = await open_page(browser, f"{stack.host_127}/down")
        await page.get_by_role("button", name=LAUNCHER).click()
        await expect(widget(page).get_by_role("alert")).to_have_text(
            "The voice service is unavailable right now. Please try again in a minute."
        )
        await screenshot(page, "07-livekit-unreachable")
        assert stack.voice_server.requests == []
        assert console.unexpected(session_error(stack, 502)) == []


async def test_microphone_refused_shows_message_and_starts_no_session(stack: Stack):
    embed(stack, "/nomic", agent="support-bot")
    async with chromium(grant_microphone=False) as denying:
        page, console = await open_page(denying, f"{stack.host_127}/nomic")
        await page.get_by_role("button", name=LAUNCHER).click()
        await expect(widget(page).get_by_role("alert")).to_have_text(
            re.compile(r"^Microphone access was blocked\. To talk with the agent, allow the microphone")
        )
        await screenshot(page, "08-microphone-denied")
        assert console.unexpected() == []
    assert await stack.livekit.new_rooms() == {}


async def test_strict_csp_theming_and_isolation(stack: Stack, browser: Browser):
    voice_ws = stack.voice_server.url.replace("http://", "ws://")
    csp = (
        "default-src 'none'; "
        f"script-src {stack.token_server}; "
        f"connect-src {stack.token_server} {voice_ws} {stack.voice_server.url}; "
        "style-src 'self'; img-src data:; media-src 'none'; worker-src 'none'; "
        "require-trusted-types-for 'script'; trusted-types 'none'"
    )
    # The page's own rules try hard to restyle every button and text; they must not reach in.
    hostile = '<link rel="stylesheet" href="/hostile.css">'
    stack.host_pages.add(
        "/hostile.css",
        ":root { --oshara-accent: rgb(200, 0, 100); }\n"
        "button { display: none !important; background: lime !important; }\n"
        "* { font-family: serif !important; color: rgb(255, 0, 0) !important; }\n",
        content_type="text/css",
    )
    embed(stack, "/strict", agent="support-bot", head=hostile, headers={"Content-Security-Policy": csp})
    page = await browser.new_page(viewport={"width": 900, "height": 640})
    console = ConsoleWatch().attach(page)
    await page.add_init_script(
        "window.violations = []; document.addEventListener('securitypolicyviolation',"
        " (e) => window.violations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    await page.goto(f"{stack.host_127}/strict")
    launcher = page.get_by_role("button", name=LAUNCHER)
    await expect(launcher).to_be_visible()
    assert await launcher.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(200, 0, 100)"
    assert await launcher.evaluate("b => getComputedStyle(b).color") == "rgb(255, 255, 255)"
    assert await launcher.evaluate("b => getComputedStyle(b).fontFamily") != "serif"
    await screenshot(page, "09-themed-under-csp")

    await launcher.click()
    await expect(widget(page).get_by_role("alert")).to_have_text(VOICE_SERVER_MESSAGE)
    assert len(await stack.livekit.new_rooms()) == 1
    assert await page.evaluate("window.violations") == []
    assert console.unexpected(*voice_server_failures(stack)) == []


async def test_hang_up_while_connecting_and_unmount(stack: Stack, browser: Browser):
    embed(stack, "/cancel", agent="support-bot")
    stack.voice_server.delay_seconds = 1.5
    page, console = await open_page(browser, f"{stack.host_127}/cancel")
    await page.get_by_role("button", name=LAUNCHER).click()
    status = widget(page).get_by_role("status")
    await expect(status).to_have_text("Connecting…")
    await widget(page).get_by_role("button", name="Hang up").click()
    await expect(status).to_have_text("Call ended")
    await expect(widget(page).get_by_role("button", name="Call again")).to_be_focused()
    await expect(widget(page).get_by_role("alert")).to_be_hidden()
    await screenshot(page, "11-ended")
    # Closing the panel brings the call button back; unmount removes the widget.
    await widget(page).get_by_role("button", name="Close").click()
    await expect(page.get_by_role("button", name=LAUNCHER)).to_be_focused()
    await page.evaluate("Oshara.unmount()")
    await expect(widget(page)).to_have_count(0)
    assert console.unexpected(websocket_failure(stack)) == []
