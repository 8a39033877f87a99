"""Section 6: what a page embedding the one tag downloads, before the first click and after it.

Debian's Chromium (fresh profile, empty cache) opens a customer's page on its own
origin that embeds `<script src=".../widget.js" data-agent=... async>`, waits for
the network to go quiet, then clicks the call button and waits for the call to
fail at the (refusing) voice server, after POST /v1/sessions answered 201 from the
token server on the LiveKit API stand-in. Bytes are Chromium's own count of what
came off the wire per response (DevTools `encodedDataLength`: headers and
compressed body), for the widget's code and for the API calls apart; the host
page's own HTML is left out. Then the same page again in the same profile.

The baseline is the single bundle this split replaced (widget.js at BASELINE_COMMIT),
served as it was then (uncompressed, `max-age=300`) and, for a fair comparison,
through today's precompressed handler too.

Run inside the test network namespace, like the browser tests:
`scripts/netns.sh .venv/bin/python -m bench.widget_bytes`.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import tempfile
from pathlib import Path

from aiohttp import web
from playwright.async_api import Browser, expect

from bench.common import ROOT, cli, save, table
from testkit.browser.browser import chromium
from testkit.browser.expectations import LAUNCHER, VOICE_SERVER_MESSAGE
from testkit.browser.servers import HostPages, VoiceServer, serving
from testkit.browser.wire import Received, WireLog, total
from testkit.standins.livekit import LiveKitState, create_standin
from token_server.app import STATIC_DIR, create_app
from token_server.settings import Settings
from token_server.static_files import STATIC_FILES, StaticFiles, widget_view

# The last commit whose widget.js was the whole widget with livekit-client in one file.
BASELINE_COMMIT = "595dbec"
SECRET = "bench-secret-long-enough-for-hs256-signing"
BUDGET = 40 * 1024
CHARACTER = """slug: bench
name: Bench
system_prompt: You help.
allowed_origins: ["http://127.0.0.1:*"]
max_concurrent_sessions: 1000
"""


def baseline_bundle(into: Path) -> Path | None:
    """The old single bundle in `into`, and in `into/precompressed` with a .br and .gz; None without git."""
    try:
        old = subprocess.run(
            ["git", "show", f"{BASELINE_COMMIT}:token_server/static/widget.js"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    # Apart: aiohttp's FileResponse would send a .br or .gz it finds beside the file.
    (into / "precompressed").mkdir(parents=True)
    (into / "widget.js").write_bytes(old)
    into = into / "precompressed"
    (into / "widget.js").write_bytes(old)
    (into / "widget.js.gz").write_bytes(gzip.compress(old, compresslevel=9, mtime=0))
    if shutil.which("node"):  # the same brotli the build uses
        br = subprocess.run(
            [
                "node",
                "-e",
                "process.stdout.write(require('zlib').brotliCompressSync(require('fs').readFileSync(0)))",
            ],
            input=old,
            capture_output=True,
            check=True,
        ).stdout
        (into / "widget.js.br").write_bytes(br)
    return into.parent


def old_server(root: Path, *, precompressed: bool) -> web.Application:
    """/widget.js as it was served (the file itself, five minutes), or through today's handler."""
    app = web.Application()
    if precompressed:
        app[STATIC_FILES] = StaticFiles(root / "precompressed")
        app.router.add_get("/widget.js", widget_view)
    else:

        async def as_before(request: web.Request) -> web.StreamResponse:
            return web.FileResponse(root / "widget.js", headers={"Cache-Control": "public, max-age=300"})

        app.router.add_get("/widget.js", as_before)
    return app


def page(script_url: str, server: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Shop</title>"
        "<link rel='icon' href='data:,'></head><body><h1>Shop</h1><p>Questions? Talk to us.</p>"
        f"<script src='{script_url}' data-agent='bench' data-server='{server}' async></script>"
        "</body></html>"
    )


def split(responses: list[Received], widget_origin: str, api_origin: str) -> dict[str, int]:
    code = [r for r in responses if r.url.startswith(widget_origin) and "/widget" in r.url]
    api = [r for r in responses if r.url.startswith(api_origin) and "/v1/" in r.url]
    return {"code_bytes": total(code), "code_files": len(code), "api_bytes": total(api)}


async def measure(
    browser: Browser, url: str, widget_origin: str, api_origin: str
) -> dict[str, dict[str, int]]:
    context = await browser.new_context()
    tab = await context.new_page()
    wire = await WireLog.attach(tab)
    out = {}
    await tab.goto(url)
    launcher = tab.get_by_role("button", name=LAUNCHER)
    await expect(launcher).to_be_visible()
    await tab.wait_for_load_state("networkidle")
    await tab.wait_for_timeout(1000)  # anything the widget would fetch when idle
    out["before_click"] = split(wire.since(), widget_origin, api_origin)
    mark = wire.mark()
    await launcher.click()
    await expect(tab.locator("oshara-widget").get_by_role("alert")).to_have_text(VOICE_SERVER_MESSAGE)
    await tab.wait_for_load_state("networkidle")
    out["click"] = split(wire.since(mark), widget_origin, api_origin)
    mark = wire.mark()
    await tab.goto(url)
    await tab.get_by_role("button", name=LAUNCHER).click()
    await expect(tab.locator("oshara-widget").get_by_role("alert")).to_have_text(VOICE_SERVER_MESSAGE)
    out["second_visit_with_click"] = split(wire.since(mark), widget_origin, api_origin)
    await context.close()
    return out


async def run(quick: bool) -> dict:
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        chars = Path(tmp) / "characters"
        chars.mkdir()
        (chars / "bench.yaml").write_text(CHARACTER)
        voice = VoiceServer()
        pages = HostPages()
        old_root = baseline_bundle(Path(tmp) / "baseline")
        async with (
            serving(create_standin(LiveKitState(api_secret=SECRET, record=False))) as lk_api,
            serving(voice.app()) as voice_url,
        ):
            settings = Settings(
                _env_file=None,
                livekit_url=voice_url.replace("http://", "ws://"),
                livekit_api_url=lk_api,
                livekit_api_secret=SECRET,
                database_url=f"sqlite+aiosqlite:///{tmp}/bench.db",
                characters_dir=chars,
            )
            async with serving(create_app(settings)) as token_server, serving(pages.app()) as host:
                targets = [("split: loader + call chunk, precompressed (now)", token_server)]
                if old_root is not None:
                    async with (
                        serving(old_server(old_root, precompressed=False)) as old_plain,
                        serving(old_server(old_root, precompressed=True)) as old_br,
                    ):
                        targets += [
                            ("single bundle, uncompressed (baseline, as served before)", old_plain),
                            ("single bundle, precompressed", old_br),
                        ]
                        rows = await measure_all(targets, token_server, host, pages)
                else:
                    rows = await measure_all(targets, token_server, host, pages)
    print(
        table(
            ["widget.js served as", "before click KB", "click: code KB", "click: API KB", "2nd visit KB"],
            [
                [
                    r["target"],
                    r["before_click"]["code_bytes"] / 1024,
                    r["click"]["code_bytes"] / 1024,
                    r["click"]["api_bytes"] / 1024,
                    (r["second_visit_with_click"]["code_bytes"]) / 1024,
                ]
                for r in rows
            ],
        )
    )
    now = rows[0]
    met = now["before_click"]["code_bytes"] <= BUDGET
    print(
        f"goal: the tag transfers <= {BUDGET // 1024} KB before the first click: "
        f"{now['before_click']['code_bytes'] / 1024:.1f} KB -> {'met' if met else 'NOT met'}"
    )
    files = {
        p.name: p.stat().st_size
        for p in sorted([*STATIC_DIR.glob("widget.js*"), *STATIC_DIR.glob("widget/*")])
    }
    result = {"rows": rows, "goal": {"budget_bytes": BUDGET, "met": met}, "files": files}
    save("widget_bytes", result)
    return result


async def measure_all(targets: list[tuple[str, str]], api: str, host: str, pages: HostPages) -> list[dict]:
    rows = []
    async with chromium() as browser:
        for i, (name, origin) in enumerate(targets):
            pages.add(f"/shop-{i}", page(f"{origin}/widget.js", api))
            rows.append({"target": name, **await measure(browser, f"{host}/shop-{i}", origin, api)})
    return rows


def main() -> None:
    cli(run, __doc__)


if __name__ == "__main__":
    main()
