"""The widget's files, served precompressed: encodings, validators, caching, and refusals.

A small app serves a static directory of our own through the token server's static
handler (the routes `create_app` registers), with the error middleware for the
error shape. The client never decompresses: the test reads the bytes on the wire.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from token_server.app import STATIC_DIR
from token_server.errors import error_middleware
from token_server.static_files import STATIC_FILES, StaticFiles, widget_chunk_view, widget_view

pytestmark = pytest.mark.integration

LOADER = b"/* loader */ import('./widget/call.ABCDEFGH.js');\n" * 40
CHUNK = b"/* call */ export const call = 1;\n" * 200
# Stand-ins for brotli output: the server sends the file, it never decodes it.
LOADER_BR = b"brotli bytes of the loader"
CHUNK_BR = b"brotli bytes of the chunk"


def write_build(root: Path) -> None:
    (root / "widget").mkdir(parents=True)
    for path, body, br in (
        (root / "widget.js", LOADER, LOADER_BR),
        (root / "widget" / "call.ABCDEFGH.js", CHUNK, CHUNK_BR),
    ):
        path.write_bytes(body)
        path.with_name(path.name + ".br").write_bytes(br)
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(body, mtime=0))


def static_app(root: Path) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app[STATIC_FILES] = StaticFiles(root)
    app.router.add_get("/widget.js", widget_view)
    app.router.add_get("/widget/{filename}", widget_chunk_view)
    return app


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "static"
    write_build(root)
    (tmp_path / "secret.js").write_text("secret")
    return root


@pytest.fixture
async def client(aiohttp_client, root: Path) -> TestClient:
    # No automatic Accept-Encoding, no decompression: each test says what it accepts.
    return await aiohttp_client(
        static_app(root), auto_decompress=False, skip_auto_headers=["Accept-Encoding"]
    )


async def get(client: TestClient, path: str, **headers: str):
    resp = await client.get(path, headers=headers)
    return resp, await resp.read()


async def test_brotli_when_accepted_with_its_headers(client: TestClient):
    resp, body = await get(client, "/widget.js", **{"Accept-Encoding": "gzip, deflate, br, zstd"})
    assert resp.status == 200
    assert body == LOADER_BR
    assert resp.headers["Content-Encoding"] == "br"
    assert resp.headers["Content-Length"] == str(len(LOADER_BR))
    assert resp.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert resp.headers["Vary"] == "Accept-Encoding"
    assert re.fullmatch(r'"[0-9a-f]{32}"', resp.headers["ETag"])  # strong: no W/
    assert resp.headers["Cache-Control"] == "public, max-age=300"
    # A page on any origin imports the chunk as a module (a CORS fetch); COEP pages too.
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert resp.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("accept", "encoding"),
    [
        ("gzip", "gzip"),
        ("x-gzip, deflate", "gzip"),
        ("br;q=0, gzip", "gzip"),
        ("br;q=0.1, gzip;q=0.9", "gzip"),
        ("gzip;q=0.5, br;q=0.8", "br"),
        ("gzip, br", "br"),  # equal q: ours decides, and brotli is smaller
        ("*", "br"),
        ("*;q=0.5, br;q=0", "gzip"),
    ],
)
async def test_the_best_accepted_encoding(client: TestClient, accept: str, encoding: str):
    resp, body = await get(client, "/widget.js", **{"Accept-Encoding": accept})
    assert resp.headers["Content-Encoding"] == encoding
    assert (gzip.decompress(body) if encoding == "gzip" else body) == (
        LOADER if encoding == "gzip" else LOADER_BR
    )


@pytest.mark.parametrize(
    "accept", [None, "", "identity", "deflate, zstd", "br;q=0, gzip;q=0", "*;q=0", "gzip;q=x"]
)
async def test_the_file_itself_when_no_encoding_we_have_is_accepted(client: TestClient, accept: str | None):
    headers = {} if accept is None else {"Accept-Encoding": accept}
    resp, body = await get(client, "/widget.js", **headers)
    assert resp.status == 200
    assert body == LOADER
    assert "Content-Encoding" not in resp.headers
    assert resp.headers["Vary"] == "Accept-Encoding"  # another request may get brotli


async def test_each_encoding_has_its_own_etag_and_a_match_is_304(client: TestClient):
    tags = {}
    for accept in ("br", "gzip", "identity"):
        resp, _ = await get(client, "/widget.js", **{"Accept-Encoding": accept})
        tags[accept] = resp.headers["ETag"]
    assert len(set(tags.values())) == 3

    resp, body = await get(client, "/widget.js", **{"Accept-Encoding": "br", "If-None-Match": tags["br"]})
    assert resp.status == 304
    assert body == b""
    assert resp.headers["ETag"] == tags["br"]
    assert resp.headers["Vary"] == "Accept-Encoding"
    assert resp.headers["Cache-Control"] == "public, max-age=300"
    # Weak comparison, lists and `*`, as RFC 9110 says for If-None-Match.
    for if_none_match in (f'"other", W/{tags["br"]}', "*"):
        resp, _ = await get(client, "/widget.js", **{"Accept-Encoding": "br", "If-None-Match": if_none_match})
        assert resp.status == 304
    # The brotli validator does not match the gzip answer: that one is sent whole.
    resp, body = await get(client, "/widget.js", **{"Accept-Encoding": "gzip", "If-None-Match": tags["br"]})
    assert resp.status == 200 and gzip.decompress(body) == LOADER
    assert resp.headers["ETag"] == tags["gzip"]


async def test_a_rebuild_is_served_with_a_new_etag(client: TestClient, root: Path):
    resp, _ = await get(client, "/widget.js", **{"Accept-Encoding": "br"})
    before = resp.headers["ETag"]
    (root / "widget.js.br").write_bytes(b"brotli bytes of the rebuilt loader")
    resp, body = await get(client, "/widget.js", **{"Accept-Encoding": "br", "If-None-Match": before})
    assert resp.status == 200 and body == b"brotli bytes of the rebuilt loader"
    assert resp.headers["ETag"] != before


async def test_the_hashed_chunk_is_cached_for_good(client: TestClient):
    resp, body = await get(client, "/widget/call.ABCDEFGH.js", **{"Accept-Encoding": "br"})
    assert resp.status == 200 and body == CHUNK_BR
    assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    head = await client.head("/widget/call.ABCDEFGH.js", headers={"Accept-Encoding": "br"})
    assert head.status == 200 and head.headers["ETag"] == resp.headers["ETag"]
    assert await head.read() == b""


@pytest.mark.parametrize(
    "path",
    [
        "/widget/..%2F..%2Fsecret.js",  # above the static directory
        "/widget/..%2Fwidget.js",  # the loader under a URL that would cache it for a year
        "/widget/%2e%2e",
        "/widget/.hidden.js",
        "/widget/call.ABCDEFGH.js.br",  # compressed files only as an encoding, never by name
        "/widget/call.ABCDEFGH.txt",
        "/widget/call.NOTBUILT.js",
        "/widget/link.js",  # a symlink out of the static directory
        "/widget/nul%00.js",
    ],
)
async def test_a_path_outside_the_build_is_refused(client: TestClient, root: Path, path: str):
    (root / "widget" / ".hidden.js").write_text("hidden")
    (root / "widget" / "call.ABCDEFGH.txt").write_text("text")
    (root / "widget" / "link.js").symlink_to(root.parent / "secret.js")
    resp = await client.get(path, headers={"Accept-Encoding": "br, gzip"})
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"


async def test_the_committed_build_is_whole(aiohttp_client):
    # The loader names a chunk that is there, and every file has both encodings beside it.
    client = await aiohttp_client(static_app(STATIC_DIR), auto_decompress=False)
    loader = (STATIC_DIR / "widget.js").read_text()
    (chunk,) = set(re.findall(r"widget/call\.[A-Z0-9]+\.js", loader))
    for path in ("/widget.js", f"/{chunk}"):
        for accept, suffix in (("br", ".br"), ("gzip", ".gz"), ("identity", "")):
            resp = await client.get(path, headers={"Accept-Encoding": accept})
            assert resp.status == 200, (path, accept)
            assert await resp.read() == (STATIC_DIR / (path.lstrip("/") + suffix)).read_bytes()
    assert (STATIC_DIR / "widget.js.br").stat().st_size <= 40 * 1024
