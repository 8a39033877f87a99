"""Section 7: from the click to the greeting's first sound, in Chromium, through the real servers.

The stack of the e2e tests (the real livekit-server, token server and worker, the
voice service with tiny Chatterbox weights on the CPU) and a customer's page on its
own origin embedding the one tag with a session grant. For each call a fresh page
is opened, the call button is clicked, and the page's own WebRTC statistics are
polled every 10 ms until the agent's inbound audio carries sound (`audioLevel`).
The phases are read from the page: the session answered (POST /v1/sessions), the
room connected, the agent in the room, the greeting's first sound.

The baseline is the voice service alone: the time to the first audio byte of the
same greeting, asked for directly over HTTP, on the same machine in the same run.
What remains above it is ours and the transport's.

It runs itself inside a network namespace of its own (scripts/netns.sh), as the e2e tests do:
`.venv/bin/python -m bench.widget_call [--quick]`.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from playwright.async_api import Page, expect

from bench.common import ROOT, cli, save, table
from testkit.e2e.browser_call import (
    LAUNCHER,
    TRACK_PEER_CONNECTIONS,
    chromium_with_microphone,
    ended,
    microphone_wav,
    serve_site,
    widget,
)
from testkit.e2e.stack import ADDRESSES, Stack, run_stack, start_voice_service
from testkit.support_call import TRANSCRIPTS, support_script
from testkit.waiting import wait_until, within
from voice_service.protocol import SPEECH_PATH

GREETING = "Hi Ada, I'm Sam from support. How can I help?"
FIRST_SOUND = """async () => {
  for (const pc of window.__pcs) {
    if (pc.connectionState !== 'connected') continue;
    let loud = false;
    (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'audio' && s.audioLevel > 0.01) loud = true; });
    if (loud) return true;
  }
  return false;
}"""


async def _until(page: Page, script: str, seconds: float = 60.0) -> float:
    """When `script` first held on the page (polled every 10 ms)."""
    await wait_until(lambda: page.evaluate(script), seconds, script[:60], interval=0.01)
    return time.monotonic()


async def one_call(stack: Stack, site, browser) -> dict[str, float]:
    page = await browser.new_page()
    await page.add_init_script(TRACK_PEER_CONNECTIONS)
    await page.goto(f"{site.url}/shop")
    await page.wait_for_function("window.Oshara && window.Oshara.widget")
    async with page.expect_response(lambda r: r.url.endswith("/v1/sessions")) as answered:
        clicked = time.monotonic()
        await page.get_by_role("button", name=LAUNCHER).click()
    await answered.value
    session = time.monotonic()
    status = widget(page).get_by_role("status")
    await expect(status).not_to_have_text("Connecting…", timeout=30_000)
    connected = time.monotonic()
    await expect(status).not_to_have_text("Waiting for the agent…", timeout=60_000)
    agent = time.monotonic()
    sound = await _until(page, FIRST_SOUND)
    await widget(page).get_by_role("button", name="Hang up").click()
    await page.close()
    # let the slot come back before the next call
    (newest, *_) = (await stack.get("/v1/sessions"))["sessions"]
    await within(ended(stack, newest["session_id"]), 30, interval=0.1)
    ms = 1000.0
    return {
        "session_ms": (session - clicked) * ms,
        "room_ms": (connected - clicked) * ms,
        "agent_ms": (agent - clicked) * ms,
        "first_sound_ms": (sound - clicked) * ms,
    }


async def voice_first_byte(voice_url: str) -> float:
    payload = {"text": GREETING, "voice_model": "chatterbox-en-v1", "language": "en-US"}
    async with aiohttp.ClientSession() as http:
        started = time.monotonic()
        async with http.post(f"{voice_url}{SPEECH_PATH}", json=payload) as resp:
            resp.raise_for_status()
            await resp.content.readany()
            return (time.monotonic() - started) * 1000.0


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(quick: bool) -> dict:
    if len(ADDRESSES) != 2:
        raise SystemExit(
            "run me inside the test namespace: scripts/netns.sh .venv/bin/python -m bench.widget_call"
        )
    calls = 3 if quick else 8
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = work / "tiny-models"
        await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "voice_service", "make-tiny-model", str(models / "chatterbox-en-v1")],
            check=True,
            capture_output=True,
        )
        voice = await asyncio.to_thread(start_voice_service, work / "voice", models)
        try:
            baseline = [await voice_first_byte(voice.url) for _ in range(calls)]
            async with (
                run_stack(
                    work / "stack",
                    voice_url=voice.url,
                    script=support_script,
                    transcripts=TRANSCRIPTS,
                    origin="http://127.0.0.1:*",
                ) as stack,
                serve_site(stack) as site,
                chromium_with_microphone(microphone_wav(work / "silence.wav")) as browser,
            ):
                rows = [await one_call(stack, site, browser) for _ in range(calls)]
        finally:
            voice.process.stop()
    phases = ["session_ms", "room_ms", "agent_ms", "first_sound_ms"]
    summary = {
        p: {"p50": statistics.median([r[p] for r in rows]), "p95": _p([r[p] for r in rows], 0.95)}
        for p in phases
    }
    base = {"p50": statistics.median(baseline), "p95": _p(baseline, 0.95)}
    print(
        table(
            ["from the click to", "p50 ms", "p95 ms"],
            [
                ["POST /v1/sessions answered", summary["session_ms"]["p50"], summary["session_ms"]["p95"]],
                ["the room connected", summary["room_ms"]["p50"], summary["room_ms"]["p95"]],
                ["the agent in the room", summary["agent_ms"]["p50"], summary["agent_ms"]["p95"]],
                [
                    "the greeting's first sound",
                    summary["first_sound_ms"]["p50"],
                    summary["first_sound_ms"]["p95"],
                ],
                ["baseline: voice service first byte alone", base["p50"], base["p95"]],
                [
                    "first sound less the baseline (ours + transport)",
                    summary["first_sound_ms"]["p50"] - base["p50"],
                    summary["first_sound_ms"]["p95"] - base["p95"],
                ],
            ],
        )
    )
    print(f"{calls} calls; idle job processes were warm (the worker keeps them loaded between calls)")
    result = {"calls": rows, "summary": summary, "baseline_voice_first_byte": base, "cpus": os.cpu_count()}
    save("widget_call", result)
    return result


def main() -> None:
    if len(ADDRESSES) != 2:
        # media moves: run inside a network namespace of our own, like the e2e tests
        netns = str(ROOT / "scripts" / "netns.sh")
        os.execv(netns, [netns, sys.executable, "-m", "bench.widget_call", *sys.argv[1:]])  # noqa: S606
    cli(run, __doc__)


if __name__ == "__main__":
    main()
