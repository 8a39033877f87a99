"""POST /v1/sessions against the real token server and the run's real livekit-server."""

from __future__ import annotations

import datetime as dt
import json
import logging

import jwt
import pytest
from livekit import api

from contract import DispatchConfig, SessionConfig
from testkit.livekit_server import API_KEY, API_SECRET

pytestmark = pytest.mark.integration

ALLOWED = {"Origin": "https://shop.example.com"}
# The site's own server, on that site: it may set every field the character does not lock.
SERVER = {**ALLOWED, "Authorization": "Bearer server-key-1"}
SECRET_VALUE = "sk-live-very-secret-header-value-123"


def full_request() -> dict:
    """A request that sets every field of the seed."""
    return {
        "agent": "helper",
        "language": "en-GB",
        "system_prompt": "You are helping {{user_name}} with {{topic|billing}}.",
        "greeting": "Hi {{user_name}}, how can I help?",
        "voice_model": "chatterbox-en-v1",
        "reference_audio_url": "https://cdn.example.com/voices/ana.wav",
        "mcp_headers": {"Authorization": f"Bearer {SECRET_VALUE}", "X-Tenant": "acme"},
        "origin_url": "https://shop.example.com/checkout?step=2",
        "metadata": {"user_name": "Dana", "user_id": "u-42", "plan": {"tier": "pro"}},
    }


async def test_start_session_returns_token_and_effective_config(client, livekit):
    resp = await client.post("/v1/sessions", json=full_request(), headers=SERVER)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert set(body) == {
        "token",
        "livekit_url",
        "room_name",
        "participant_identity",
        "session_id",
        "expires_in_seconds",
        "character_slug",
        "mode",
        "system_prompt",
        "greeting",
        "server_url",
        "participant_token",
    }
    assert body["character_slug"] == "helper"
    assert body["system_prompt"] == "You are helping Dana with billing."
    assert body["greeting"] == "Hi Dana, how can I help?"
    assert body["livekit_url"] == body["server_url"] == "wss://livekit.test.invalid"
    assert body["participant_token"] == body["token"]
    assert body["expires_in_seconds"] == 3600
    assert body["session_id"].startswith("ses_") and len(body["session_id"]) == 36

    # The token: signed with our key, for this room only, microphone only, 1 h.
    claims = api.TokenVerifier(API_KEY, API_SECRET).verify(body["token"])
    assert claims.identity == body["participant_identity"]
    assert claims.video.room == body["room_name"]
    assert claims.video.room_join is True
    assert claims.video.can_publish_sources == ["microphone"]
    assert claims.video.can_subscribe is True and claims.video.can_publish_data is True
    assert not claims.video.room_create and not claims.video.room_admin
    raw = jwt.decode(body["token"], options={"verify_signature": False})
    assert raw["exp"] - raw["nbf"] == pytest.approx(3600, abs=5)

    # One room, carrying the public configuration and the dispatch. The real server
    # made it, so it accepted our server's own API token and its roomCreate grant.
    rooms = await livekit.new_rooms()
    assert list(rooms) == [body["room_name"]]
    created = rooms[body["room_name"]]
    assert created.empty_timeout > 0 and created.departure_timeout > 0
    config = SessionConfig.from_json(created.metadata)
    assert config.session_id == body["session_id"]
    assert config.character == "helper"
    assert config.language == "en-GB"
    assert config.system_prompt == body["system_prompt"]
    assert config.greeting == body["greeting"]
    assert config.voice_model == "chatterbox-en-v1"
    assert config.reference_audio_url == "https://cdn.example.com/voices/ana.wav"
    assert config.metadata == full_request()["metadata"]
    assert [s.name for s in config.mcp_servers] == ["crm"]
    assert config.form is not None and config.form.fields[0].name == "full_name"

    (agent,) = await livekit.dispatches(body["room_name"])
    assert agent.agent_name == "oshara-agent"
    dispatch = DispatchConfig.from_json(agent.metadata)
    assert dispatch.session_id == body["session_id"]
    assert dispatch.mcp_headers == full_request()["mcp_headers"]
    assert dispatch.mcp_server_headers == {"crm": {"Authorization": "Bearer ${CRM_TOKEN}"}}


async def test_secrets_never_leave_the_dispatch(client, livekit, caplog):
    caplog.set_level(logging.DEBUG)
    resp = await client.post("/v1/sessions", json=full_request(), headers=SERVER)
    assert resp.status == 201
    text = await resp.text()
    body = json.loads(text)
    created = await livekit.room(body["room_name"])
    assert created is not None
    token_claims = json.dumps(jwt.decode(body["token"], options={"verify_signature": False}))
    for place in (text, created.metadata, token_claims, caplog.text):
        assert SECRET_VALUE not in place
        assert "X-Tenant" not in place
    # Nor does the character's own header template reach the public metadata.
    assert "CRM_TOKEN" not in created.metadata


async def test_defaults_come_from_the_character(client, livekit):
    resp = await client.post("/v1/sessions", json={"agent": "helper"}, headers=ALLOWED)
    assert resp.status == 201
    body = await resp.json()
    assert body["system_prompt"] == "You help someone with anything."
    assert body["greeting"] == "Hello there!"
    config = SessionConfig.from_json((await livekit.room(body["room_name"])).metadata)
    assert config.language == "en-US"
    assert config.voice_model == "chatterbox-en-v1"
    assert config.metadata == {}


async def test_missing_template_variables_are_listed(client, livekit):
    resp = await client.post(
        "/v1/sessions",
        json={"agent": "helper", "system_prompt": "Help {{first}} and {{second}} and {{third|x}}."},
        headers=SERVER,
    )
    assert resp.status == 422
    err = (await resp.json())["error"]
    assert err["code"] == "validation_error"
    (detail,) = err["details"]
    assert detail["field"] == "system_prompt"
    assert detail["missing"] == ["first", "second"]
    assert await livekit.new_rooms() == {}


async def test_language_switches_default_voice_to_multilingual(client, livekit):
    resp = await client.post("/v1/sessions", json={"agent": "helper", "language": "de-DE"}, headers=ALLOWED)
    assert resp.status == 201
    config = SessionConfig.from_json((await livekit.room((await resp.json())["room_name"])).metadata)
    assert config.voice_model == "chatterbox-multilingual-v1"
    assert config.language == "de-DE"


async def test_explicit_voice_model_must_speak_the_language(client):
    resp = await client.post(
        "/v1/sessions",
        json={"agent": "helper", "language": "de", "voice_model": "chatterbox-turbo-v1"},
        headers=ALLOWED,
    )
    assert resp.status == 422
    details = (await resp.json())["error"]["details"]
    assert [d["field"] for d in details] == ["voice_model"]


async def test_language_no_model_speaks_is_rejected(client):
    resp = await client.post("/v1/sessions", json={"agent": "helper", "language": "cy"}, headers=ALLOWED)
    assert resp.status == 422
    assert (await resp.json())["error"]["details"][0]["field"] == "language"


async def test_explicit_dispatch_mode_makes_one_dispatch(make_client, livekit):
    # The explicit mode is for older servers that ignore CreateRoom's `agents`: the room is
    # created without them and CreateDispatch makes the one dispatch, so a server that does
    # honour them still gets exactly one agent.
    client = await make_client(livekit_dispatch_mode="explicit")
    resp = await client.post("/v1/sessions", json={"agent": "helper"}, headers=ALLOWED)
    assert resp.status == 201
    body = await resp.json()
    # (a room created without `agents` also gets LiveKit's default dispatch for unnamed
    # workers, which ours, registered by name, never take)
    dispatches = await livekit.dispatches(body["room_name"])
    (dispatch,) = [d for d in dispatches if d.agent_name]
    assert dispatch.room == body["room_name"] and dispatch.agent_name == "oshara-agent"
    assert DispatchConfig.from_json(dispatch.metadata).session_id == body["session_id"]


async def test_configured_ttl_and_agent_name(make_client, livekit):
    client = await make_client(token_ttl_seconds=600, agent_name="custom-agent")
    resp = await client.post("/v1/sessions", json={"agent": "helper"}, headers=ALLOWED)
    body = await resp.json()
    assert body["expires_in_seconds"] == 600
    raw = jwt.decode(body["token"], options={"verify_signature": False})
    assert raw["exp"] - raw["nbf"] == pytest.approx(600, abs=5)
    (dispatch,) = await livekit.dispatches(body["room_name"])
    assert dispatch.agent_name == "custom-agent"


async def test_health(client):
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert (await resp.json())["status"] == "ok"


async def test_characters_list_is_public_and_has_no_prompts(client):
    resp = await client.get("/v1/characters")
    assert resp.status == 200
    chars = {c["slug"]: c for c in (await resp.json())["characters"]}
    assert set(chars) == {"helper", "locked", "turbo"}  # "sleeping" is inactive
    assert "system_prompt" not in chars["helper"]
    assert chars["helper"]["form"][0]["name"] == "full_name"


async def test_created_session_is_recorded(client):
    resp = await client.post("/v1/sessions", json=full_request(), headers=SERVER)
    body = await resp.json()
    from token_server.app import START

    row = await client.app[START].store.get(body["session_id"])
    assert row.status == "pending"
    assert row.origin == "https://shop.example.com"
    assert row.origin_url == "https://shop.example.com/checkout?step=2"
    assert row.room_name == body["room_name"]
    assert SECRET_VALUE not in json.dumps(row.config)
    assert row.join_deadline > row.created_at
    assert row.max_end_at - row.created_at == dt.timedelta(seconds=3600)


async def test_livekit_url_alone_reaches_the_server_api(make_client, livekit_server, livekit):
    # With no LIVEKIT_API_URL, the API is LIVEKIT_URL itself (livekit-api maps ws:// to http://).
    ws_url = livekit_server.config.ws_url
    client = await make_client(livekit_url=ws_url, livekit_api_url=None)
    resp = await client.post("/v1/sessions", json={"agent": "helper"}, headers=ALLOWED)
    assert resp.status == 201
    body = await resp.json()
    assert body["livekit_url"] == ws_url
    assert list(await livekit.new_rooms()) == [body["room_name"]]
