"""Character versions, reloads and post-call analysis, on the real token server and database.

The analysis LLM is the OpenAI-compatible stand-in answering structured output; a
session is ended by the worker's own signed `session_ended` report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from contract import AnalysisConfig
from contract.ingest_token import sign_ingest_token
from testkit.livekit_server import API_KEY, API_SECRET
from testkit.standins.openai_standin import OpenAIStandIn, TextReply
from token_server.analysis import AnalysisFailed, parse_reply, reply_model, reply_schema
from token_server.app import ANALYSIS, WEBHOOKS

pytestmark = pytest.mark.integration

KEY = {"Authorization": "Bearer server-key-1"}
ORIGIN = {"Origin": "https://shop.example.com"}
HEADER_SECRET = "literal-header-secret-0123456789"

ANALYSIS_V1 = """
analysis:
  summary: {instruction: One sentence.}
  fields:
    - {name: email, type: email, description: The caller's email}
    - {name: plan, type: choice, choices: [basic, pro]}
    - {name: seats, type: integer}
  success:
    - {name: resolved, question: "Was the caller's question answered?"}
"""
ANALYSIS_V2 = """
analysis:
  summary: false
  success:
    - {name: upsold, question: "Did the caller move to a bigger plan?"}
"""


def write_character(directory: Path, analysis: str = ANALYSIS_V1, *, webhook: str | None = None) -> None:
    directory.mkdir(exist_ok=True)
    text = (
        "slug: seller\nname: Sol the Seller\ndescription: Sells plans.\nsystem_prompt: Sell plans.\n"
        "allowed_origins: ['https://shop.example.com']\n"
        "llm: {model: standin-analyst}\n"
        "mcp_servers:\n  - name: crm\n    url: 'http://me:hunter2@127.0.0.1:9/mcp?key=url-secret'\n"
        f"    headers: {{Authorization: 'Bearer ${{CRM_TOKEN}}', X-Extra: '{HEADER_SECRET}'}}\n"
        "webhook_secret: ${TEST_WEBHOOK_SECRET}\n"
        "form:\n  fields:\n    - {name: email, type: email, required: true}\n" + analysis
    )
    if webhook:
        text += f"webhook_url: {webhook}\n"
    (directory / "seller.yaml").write_text(text)


def good_reply(body: dict[str, Any]) -> TextReply:
    """An answer that holds to whatever schema the request carries."""
    schema = body["response_format"]["json_schema"]["schema"]
    out: dict[str, Any] = {}
    props = schema["properties"]
    if "summary" in props:
        out["summary"] = "Ana asked about plans and chose pro."
    if "fields" in props:
        values = {"email": "ana@example.org", "plan": "pro", "seats": 3}
        out["fields"] = {name: values.get(name) for name in props["fields"]["properties"]}
    if "success" in props:
        out["success"] = {
            name: {"answer": True, "reason": "The caller said so."} for name in props["success"]["properties"]
        }
    return TextReply(json.dumps(out))


@pytest.fixture
async def standin(aiohttp_server):
    """The analysis LLM: answers good replies unless a test swaps the script."""
    llm = OpenAIStandIn(script=good_reply, first_token_delay=0.01)
    server = await aiohttp_server(llm.app())
    llm.base_url = str(server.make_url("/v1"))  # type: ignore[attr-defined]
    return llm


@pytest.fixture
def characters_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", "whsec-test-0123456789abcdef")
    directory = tmp_path / "characters"
    write_character(directory)
    return directory


async def analysis_client(make_client, standin, characters_dir, **overrides):
    values = {
        "characters_dir": characters_dir,
        "analysis_llm_base_url": standin.base_url,
        "analysis_poll_seconds": 3600,  # the test runs the queue itself
        # Retries fall due only when a test moves the clock (`clock.advance`).
        "analysis_retry_base_seconds": 0.5,
        "webhook_poll_seconds": 3600,
        **overrides,
    }
    return await make_client(**values)


async def start(client) -> str:
    resp = await client.post("/v1/sessions", json={"agent": "seller"}, headers=ORIGIN)
    assert resp.status == 201, await resp.text()
    return (await resp.json())["session_id"]


async def end(client, sid: str) -> None:
    token = sign_ingest_token(API_KEY, API_SECRET, sid)
    events = [
        {"type": "transcript", "role": "agent", "text": "Which plan, and your email?"},
        {"type": "transcript", "role": "user", "text": "Pro for three seats; ana at example dot com."},
        {"type": "tool_call", "tool": "set_form_field", "duration_ms": 3, "ok": True, "arguments": {"x": 1}},
        {"type": "form_updated", "field": "email", "value": "ana@example.com"},
        {"type": "session_ended", "reason": "done"},
    ]
    resp = await client.post(
        f"/internal/v1/sessions/{sid}/events",
        json={"events": events},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status == 200, await resp.text()


async def analysis_of(client, sid: str) -> dict[str, Any]:
    resp = await client.get(f"/v1/sessions/{sid}/analysis", headers=KEY)
    assert resp.status == 200
    return await resp.json()


async def test_versions_hash_the_public_definition_and_reload_makes_a_new_one(
    make_client, standin, characters_dir
):
    client = await analysis_client(make_client, standin, characters_dir)
    first = await start(client)
    record = await (await client.get(f"/v1/sessions/{first}", headers=KEY)).json()
    v1 = record["character_version"]
    assert len(v1) == 16

    listing = await (await client.get("/v1/characters/seller/versions", headers=KEY)).json()
    (only,) = listing["versions"]
    assert only["version"] == v1 and only["current"] and only["sessions"] == 1
    assert only["first_used_at"] == only["last_used_at"] == record["created_at"]
    text = json.dumps(listing)
    assert HEADER_SECRET not in text and "whsec-test" not in text
    headers = only["definition"]["mcp_servers"][0]["headers"]
    assert headers == {"Authorization": "[redacted]", "X-Extra": "[redacted]"}
    # a token in a URL's query or user-info is not kept either
    assert only["definition"]["mcp_servers"][0]["url"] == "http://[redacted]@127.0.0.1:9/mcp?[redacted]"
    assert "url-secret" not in text and "hunter2" not in text

    # An unchanged file keeps its version; an edited one gets a new one.
    resp = await client.post("/v1/characters/reload", headers=KEY)
    assert (await resp.json())["characters"] == [{"slug": "seller", "version": v1, "changed": False}]
    write_character(characters_dir, ANALYSIS_V2)
    resp = await client.post("/v1/characters/reload", headers=KEY)
    (reloaded,) = (await resp.json())["characters"]
    v2 = reloaded["version"]
    assert reloaded["changed"] and v2 != v1

    second = await start(client)
    versions = (await (await client.get("/v1/characters/seller/versions", headers=KEY)).json())["versions"]
    assert [v["version"] for v in versions] == [v2, v1]
    assert [v["current"] for v in versions] == [True, False]
    # The session started before the reload keeps the version that ran it.
    assert (await (await client.get(f"/v1/sessions/{first}", headers=KEY)).json())["character_version"] == v1
    assert (await (await client.get(f"/v1/sessions/{second}", headers=KEY)).json())["character_version"] == v2

    assert (await client.get("/v1/characters/seller/versions")).status == 401
    assert (await client.get("/v1/characters/nobody/versions", headers=KEY)).status == 404
    assert (await client.post("/v1/characters/reload")).status == 401


async def test_a_bad_file_is_refused_and_the_loaded_set_stays_live(make_client, standin, characters_dir):
    client = await analysis_client(make_client, standin, characters_dir)
    await start(client)
    before = (await (await client.get("/v1/characters/seller/versions", headers=KEY)).json())["current"]
    (characters_dir / "broken.yaml").write_text(
        "slug: broken\nname: Broken\nsystem_prompt: ''\nvoice: {cfg_weight: 7}\n"
    )
    resp = await client.post("/v1/characters/reload", headers=KEY)
    assert resp.status == 422
    error = (await resp.json())["error"]
    assert error["code"] == "character_file_invalid"
    assert error["message"].startswith("broken.yaml: ")
    assert {d["field"] for d in error["details"]} == {"system_prompt", "voice.cfg_weight"}
    assert str(characters_dir) not in json.dumps(error)
    # Still the old set: seller starts with the version it had, broken is unknown.
    sid = await start(client)
    assert (await (await client.get(f"/v1/sessions/{sid}", headers=KEY)).json())[
        "character_version"
    ] == before
    resp = await client.post("/v1/sessions", json={"agent": "broken"}, headers=ORIGIN)
    assert resp.status == 404


async def test_a_good_reply_is_stored_with_the_form_kept_and_disagreements_marked(
    make_client, standin, characters_dir
):
    client = await analysis_client(make_client, standin, characters_dir)
    sid = await start(client)
    assert (await analysis_of(client, sid))["runs"] == []
    await end(client, sid)
    assert (await analysis_of(client, sid))["pending"]
    assert await client.app[ANALYSIS].run_due() == 1

    (request,) = standin.requests
    assert request["model"] == "standin-analyst" and not request.get("stream")
    response_format = request["response_format"]
    assert response_format["type"] == "json_schema" and response_format["json_schema"]["strict"]
    assert "Was the caller's question answered?" in request["messages"][0]["content"]
    call = json.loads(request["messages"][1]["content"])
    assert call["form_answers"] == {"email": "ana@example.com"}
    assert [t["role"] for t in call["transcript"]] == ["agent", "user"]
    assert call["tool_calls"][0]["tool"] == "set_form_field"

    body = await analysis_of(client, sid)
    run = body["analysis"]
    assert run["status"] == "succeeded" and run["attempts"] == 1 and run["trigger"] == "session_ended"
    assert run["character_version"] == body["character_version"]
    assert run["model"] == "standin-analyst"
    assert run["usage"]["prompt_tokens"] > 0 and run["usage"]["completion_tokens"] > 0
    result = run["result"]
    assert result["summary"] == "Ana asked about plans and chose pro."
    fields = {f["name"]: f for f in result["fields"]}
    assert fields["email"] == {
        "name": "email",
        "type": "email",
        "value": "ana@example.com",
        "source": "form",
        "captured": "ana@example.com",
        "extracted": "ana@example.org",
        "disagrees": True,
    }
    assert fields["plan"]["value"] == "pro" and fields["plan"]["source"] == "analysis"
    assert not fields["plan"]["disagrees"] and fields["seats"]["value"] == 3
    assert result["disagreements"] == ["email"]
    assert result["success"] == [
        {
            "name": "resolved",
            "question": "Was the caller's question answered?",
            "answer": True,
            "reason": "The caller said so.",
        }
    ]
    assert result["succeeded"] is True
    # The call's own usage is untouched by the analysis.
    record = await (await client.get(f"/v1/sessions/{sid}", headers=KEY)).json()
    assert "total_tokens" not in (record["usage"] or {})
    assert await client.app[ANALYSIS].run_due() == 0


async def test_a_reply_breaking_the_schema_is_retried_then_stored_failed(
    make_client, standin, characters_dir, clock
):
    replies = iter(
        [
            TextReply(json.dumps({"summary": "x", "fields": {"email": "not an email"}, "success": {}})),
            TextReply("{not json"),
        ]
    )
    standin.script = lambda body: next(replies)
    client = await analysis_client(make_client, standin, characters_dir, analysis_max_attempts=2)
    sid = await start(client)
    await end(client, sid)
    await client.app[ANALYSIS].run_due()
    clock.advance(1)  # past the backoff
    await client.app[ANALYSIS].run_due()
    run = (await analysis_of(client, sid))["analysis"]
    assert run["status"] == "failed" and run["attempts"] == 2
    assert run["error"] == "the reply is not valid JSON"
    assert len(standin.requests) == 2 and run["result"] is None


async def test_a_malformed_reply_then_a_good_one_succeeds(make_client, standin, characters_dir, clock):
    replies = iter([TextReply(json.dumps({"summary": "x"}))])
    standin.script = lambda body: next(replies, None) or good_reply(body)
    client = await analysis_client(make_client, standin, characters_dir)
    sid = await start(client)
    await end(client, sid)
    await client.app[ANALYSIS].run_due()
    body = await analysis_of(client, sid)
    assert body["analysis"] is None and body["pending"]
    assert body["runs"][0]["error"].startswith("the reply breaks the schema at: fields, success")
    clock.advance(1)  # past the backoff
    await client.app[ANALYSIS].run_due()
    run = (await analysis_of(client, sid))["analysis"]
    assert run["status"] == "succeeded" and run["attempts"] == 2 and run["error"] is None


async def test_a_timeout_is_stored_failed_with_its_reason(make_client, standin, characters_dir):
    standin.first_token_delay = 2.0
    client = await analysis_client(
        make_client, standin, characters_dir, analysis_llm_timeout_seconds=0.2, analysis_max_attempts=1
    )
    sid = await start(client)
    await end(client, sid)
    await client.app[ANALYSIS].run_due()
    run = (await analysis_of(client, sid))["analysis"]
    assert run["status"] == "failed" and run["error"] == "the analysis LLM did not answer in time"


async def test_a_rerun_uses_the_version_that_handled_the_call_unless_told_current(
    make_client, standin, characters_dir
):
    client = await analysis_client(make_client, standin, characters_dir)
    sid = await start(client)
    assert (await client.post(f"/v1/sessions/{sid}/analysis", headers=KEY)).status == 409  # still live
    await end(client, sid)
    await client.app[ANALYSIS].run_due()
    v1 = (await analysis_of(client, sid))["character_version"]

    write_character(characters_dir, ANALYSIS_V2)
    v2 = (await (await client.post("/v1/characters/reload", headers=KEY)).json())["characters"][0]["version"]

    resp = await client.post(f"/v1/sessions/{sid}/analysis", headers=KEY)
    assert resp.status == 202
    queued = (await resp.json())["run"]
    assert (
        queued["status"] == "pending" and queued["character_version"] == v1 and queued["trigger"] == "rerun"
    )
    await client.app[ANALYSIS].run_due()
    old = (await analysis_of(client, sid))["analysis"]
    assert old["id"] == queued["id"] and old["character_version"] == v1
    assert [c["name"] for c in old["result"]["success"]] == ["resolved"] and "summary" in old["result"]

    resp = await client.post(f"/v1/sessions/{sid}/analysis", json={"version": "current"}, headers=KEY)
    assert resp.status == 202
    await client.app[ANALYSIS].run_due()
    body = await analysis_of(client, sid)
    current = body["analysis"]
    assert current["character_version"] == v2
    assert [c["name"] for c in current["result"]["success"]] == ["upsold"] and "summary" not in current[
        "result"
    ]
    # Every run is kept, newest first; the session still names the version that ran it.
    assert [r["character_version"] for r in body["runs"]] == [v2, v1, v1]
    assert body["character_version"] == v1

    resp = await client.post(f"/v1/sessions/{sid}/analysis", json={"version": "0" * 16}, headers=KEY)
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "version_unavailable"
    resp = await client.post(f"/v1/sessions/{sid}/analysis", json={"version": "latest"}, headers=KEY)
    assert resp.status == 422
    assert (await client.post(f"/v1/sessions/{sid}/analysis")).status == 401


class Receiver:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        return web.Response(status=204)


@pytest.fixture
async def receiver(aiohttp_server) -> tuple[Receiver, str]:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    server = await aiohttp_server(app)
    return hook, str(server.make_url("/hook"))


async def test_the_webhook_waits_for_the_analysis_and_carries_it(
    make_client, standin, tmp_path, receiver, monkeypatch
):
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", "whsec-test-0123456789abcdef")
    hook, url = receiver
    write_character(tmp_path / "hooked", webhook=url)
    client = await analysis_client(
        make_client, standin, tmp_path / "hooked", analysis_webhook_wait_seconds=600
    )
    sid = await start(client)
    await end(client, sid)
    assert await client.app[WEBHOOKS].deliver_due() == 0  # waiting for the analysis
    await client.app[ANALYSIS].run_due()
    assert await client.app[WEBHOOKS].deliver_due() == 1
    (sent,) = hook.received
    assert sent["event"] == "session.ended"
    assert sent["analysis"]["status"] == "succeeded" and sent["analysis"]["result"]["disagreements"] == [
        "email"
    ]


async def test_past_the_wait_the_webhook_goes_without_and_session_analyzed_follows(
    make_client, standin, tmp_path, receiver, monkeypatch
):
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", "whsec-test-0123456789abcdef")
    hook, url = receiver
    write_character(tmp_path / "hooked", webhook=url)
    client = await analysis_client(make_client, standin, tmp_path / "hooked", analysis_webhook_wait_seconds=0)
    sid = await start(client)
    await end(client, sid)
    assert await client.app[WEBHOOKS].deliver_due() == 1
    assert hook.received[0]["event"] == "session.ended" and hook.received[0]["analysis"] is None
    await client.app[ANALYSIS].run_due()
    assert await client.app[WEBHOOKS].deliver_due() == 1
    second = hook.received[1]
    assert second["event"] == "session.analyzed" and second["session"]["session_id"] == sid
    assert second["analysis"]["result"]["summary"] == "Ana asked about plans and chose pro."
    record = await (await client.get(f"/v1/sessions/{sid}", headers=KEY)).json()
    assert [w["event"] for w in record["webhooks"]] == ["session.ended", "session.analyzed"]


async def test_a_character_without_analysis_queues_none(make_client, standin, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", "whsec-test-0123456789abcdef")
    write_character(tmp_path / "plain", analysis="")
    client = await analysis_client(make_client, standin, tmp_path / "plain")
    sid = await start(client)
    await end(client, sid)
    assert await client.app[ANALYSIS].run_due() == 0
    body = await analysis_of(client, sid)
    assert body["runs"] == [] and not body["pending"]
    resp = await client.post(f"/v1/sessions/{sid}/analysis", headers=KEY)
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "analysis_not_configured"


def test_the_reply_schema_and_model_agree_and_names_never_shadow_pydantic():
    config = AnalysisConfig.model_validate(
        {
            "fields": [
                {"name": "copy"},
                {"name": "schema", "type": "integer"},
                {"name": "ok", "type": "boolean"},
            ],
            "success": [{"name": "json", "question": "Done?"}],
        }
    )
    schema = reply_schema(config)
    assert schema["required"] == ["summary", "fields", "success"] and not schema["additionalProperties"]
    assert schema["properties"]["fields"]["required"] == ["copy", "schema", "ok"]
    model = reply_model(config)
    good = {
        "summary": "s",
        "fields": {"copy": "a", "schema": None, "ok": True},
        "success": {"json": {"answer": False, "reason": "No."}},
    }
    assert parse_reply(model, json.dumps(good)) == good
    with pytest.raises(AnalysisFailed, match=r"breaks the schema at: fields\.schema"):
        parse_reply(model, json.dumps({**good, "fields": {**good["fields"], "schema": "three"}}))
    with pytest.raises(AnalysisFailed, match="breaks the schema at: extra"):
        parse_reply(model, json.dumps({**good, "extra": 1}))
