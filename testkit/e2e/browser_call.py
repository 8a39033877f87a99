"""A customer's site, Chromium with a fake microphone, and reading what a page's WebRTC
carries: what the browser e2e tests and `bench/widget_call.py` share.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import jwt
import numpy as np
import soundfile
from aiohttp import web
from playwright.async_api import Browser, Page

from testkit.audio.speech import silence, speak
from testkit.browser.browser import ConsoleWatch, chromium
from testkit.support_call import TRANSCRIPTS, support_script

from .stack import SERVER_KEY, Stack, run_stack

LAUNCHER = "Start a voice call: Sam"
SAMPLE_RATE = 48_000
LEAD_SILENCE = 25.0  # seconds of the fake microphone before the user speaks: the greeting is over by then
QUESTION = "Where is my order A one two three?"

# What RTCPeerConnection carries, read from the page: every connection the page makes is kept.
TRACK_PEER_CONNECTIONS = """
window.__pcs = [];
const Native = window.RTCPeerConnection;
window.RTCPeerConnection = function (...args) { const pc = new Native(...args); window.__pcs.push(pc); return pc; };
window.RTCPeerConnection.prototype = Native.prototype;
window.violations = [];
document.addEventListener('securitypolicyviolation', (e) => window.violations.push(e.violatedDirective + ' ' + e.blockedURI));
"""
INBOUND_AUDIO_BYTES = """async () => {
  let total = 0;
  for (const pc of window.__pcs) {
    if (pc.connectionState === 'closed') continue;
    (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'audio') total += s.bytesReceived; });
  }
  return total;
}"""
OUTBOUND_AUDIO_PACKETS = """async () => {
  let total = 0;
  for (const pc of window.__pcs) {
    if (pc.connectionState === 'closed') continue;
    (await pc.getStats()).forEach((s) => { if (s.type === 'outbound-rtp' && s.kind === 'audio') total += s.packetsSent; });
  }
  return total;
}"""
AUDIO_PLAYING = """() => [...document.querySelectorAll('oshara-widget')]
  .flatMap((w) => [...w.shadowRoot.querySelectorAll('audio[data-oshara-audio]')])
  .some((a) => !a.paused && a.currentTime > 0)"""


def microphone_wav(path: Path) -> Path:
    """The user, as Chromium's fake microphone plays it: silence, the question, silence."""
    pcm = np.concatenate(
        [silence(LEAD_SILENCE, SAMPLE_RATE), speak(QUESTION, SAMPLE_RATE), silence(120.0, SAMPLE_RATE)]
    )
    soundfile.write(path, pcm, SAMPLE_RATE, subtype="PCM_16")
    return path


class Site:
    """The customer's website on 127.0.0.1 (a secure context): one page, and a backend minting grants."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.url = ""
        self.grants = 0
        self.attributes = ""  # more data-* attributes on the tag

    def csp(self) -> str:
        lk = self.stack.livekit.config
        return (
            "default-src 'none'; "
            f"script-src {self.stack.token_server_url}; "
            f"connect-src 'self' {self.stack.token_server_url} {lk.ws_url} {lk.http_url}; "
            "style-src 'self'; img-src data:; media-src 'none'; worker-src 'none'; "
            "require-trusted-types-for 'script'; trusted-types 'none'"
        )

    def app(self) -> web.Application:
        async def page(request: web.Request) -> web.Response:
            html = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Acme</title><link rel="icon" href="data:,"></head>
<body><h1>Acme Pharmacy</h1><p>Questions about your order? Talk to us.</p>
<script src="{self.stack.token_server_url}/widget.js" data-agent="support"
  data-grant-url="/oshara/grant" data-label="Sam" {self.attributes} async></script>
</body></html>"""
            return web.Response(
                text=html, content_type="text/html", headers={"Content-Security-Policy": self.csp()}
            )

        async def grant(request: web.Request) -> web.Response:
            self.grants += 1
            now = int(time.time())
            claims = {
                "agent": "support",
                "iat": now,
                "exp": now + 120,
                "jti": secrets.token_urlsafe(16),
                "metadata": {"user_id": "u-42", "user_name": "Ada"},
            }
            return web.json_response({"grant": jwt.encode(claims, SERVER_KEY, algorithm="HS256")})

        app = web.Application()
        app.router.add_get("/shop", page)
        app.router.add_post("/oshara/grant", grant)
        return app


@asynccontextmanager
async def serve_site(stack: Stack) -> AsyncIterator[Site]:
    site = Site(stack)
    runner = web.AppRunner(site.app())
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    host, port = runner.addresses[0][:2]
    site.url = f"http://{host}:{port}"
    try:
        yield site
    finally:
        await runner.cleanup()


@asynccontextmanager
async def chromium_with_microphone(wav: Path | None, *, secure: str | None = None) -> AsyncIterator[Browser]:
    """Chromium whose fake microphone plays `wav`; with None, any microphone request is refused.

    `secure` names an http origin on a veth address for Chromium to treat as secure (only
    loopback is, by default), so a page served from it may use the microphone.
    """
    extra = [f"--unsafely-treat-insecure-origin-as-secure={secure}"] if secure else []
    if wav is not None:
        extra += [
            f"--use-file-for-fake-audio-capture={wav}%noloop",
            "--autoplay-policy=no-user-gesture-required",
        ]
    async with chromium(grant_microphone=wav is not None, extra_args=extra) as browser:
        yield browser


@asynccontextmanager
async def shop_call(
    tmp_path: Path, voice_url: str | None, **stack_options
) -> AsyncIterator[tuple[Stack, Site, Browser]]:
    """The e2e stack, the customer's site, and Chromium speaking the user's WAV (None: a text chat)."""
    wav = microphone_wav(tmp_path / "user.wav") if voice_url else None
    async with (
        run_stack(
            tmp_path,
            voice_url=voice_url,
            script=support_script,
            transcripts=TRANSCRIPTS if voice_url else [],
            origin="http://127.0.0.1:*",
            **stack_options,
        ) as stack,
        serve_site(stack) as site,
        chromium_with_microphone(wav) as browser,
    ):
        yield stack, site, browser


async def open_shop(browser: Browser, site: Site) -> tuple[Page, ConsoleWatch]:
    page = await browser.new_page(viewport={"width": 900, "height": 720})
    console = ConsoleWatch().attach(page)
    await page.add_init_script(TRACK_PEER_CONNECTIONS)
    await page.goto(f"{site.url}/shop")
    await page.wait_for_function("window.Oshara && window.Oshara.widget")
    return page, console


def widget(page: Page):
    return page.locator("oshara-widget")


async def inbound_bytes(page: Page) -> int:
    return int(await page.evaluate(INBOUND_AUDIO_BYTES))


async def sent_packets(page: Page) -> int:
    return int(await page.evaluate(OUTBOUND_AUDIO_PACKETS))


async def more(value: Awaitable[int], than: int) -> bool:
    return await value > than


def ended(stack: Stack, session_id: str) -> Callable[[], Awaitable[bool]]:
    """A condition for `wait_until`: the session has ended."""

    async def check() -> bool:
        return (await stack.status(session_id))[0] == "ended"

    return check
