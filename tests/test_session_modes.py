"""Talk or type: a character's `modes`, the start request's `mode`, and where the mode travels."""

from __future__ import annotations

import secrets
import time

import jwt
import pytest
from pydantic import ValidationError

from contract import Character, SessionConfig
from contract.events import EventBatch
from contract.ingest_token import sign_ingest_token
from testkit.livekit_server import API_KEY, API_SECRET
from tests.conftest import GRANT_KEY

pytestmark = pytest.mark.integration

ORIGIN = {"Origin": "https://shop.example.com"}
KEY = {"Authorization": "Bearer server-key-1"}


def character(**fields) -> Character:
    return Character.model_validate({"slug": "c", "name": "C", "system_prompt": "hi", **fields})


def test_a_character_offers_both_modes_unless_it_says_otherwise():
    assert character().modes == ["voice", "text"]
    assert character(modes=["text"]).modes == ["text"]
    for bad in ([], ["voice", "voice"], ["video"]):
        with pytest.raises(ValidationError):
            character(modes=bad)


def test_old_room_metadata_without_a_mode_is_a_voice_session():
    config = SessionConfig.for_character("ses_1", character(), **_effective())
    raw = config.model_dump(mode="json")
    del raw["mode"]
    assert SessionConfig.model_validate(raw).mode == "voice"


def _effective() -> dict:
    return {
        "language": None,
        "system_prompt": "hi",
        "greeting": "",
        "voice_model": "chatterbox-en-v1",
        "reference_audio_url": None,
        "metadata": {},
    }


async def _room_config(livekit, room_name: str) -> SessionConfig:
    room = await livekit.room(room_name)
    assert room is not None
    return SessionConfig.from_json(room.metadata)


async def test_a_page_may_ask_for_text_and_the_room_carries_it(client, livekit):
    resp = await client.post("/v1/sessions", json={"agent": "helper", "mode": "text"}, headers=ORIGIN)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["mode"] == "text"
    assert (await _room_config(livekit, body["room_name"])).mode == "text"
    resp = await client.get(f"/v1/sessions/{body['session_id']}", headers=KEY)
    assert (await resp.json())["config"]["mode"] == "text"


async def test_without_a_mode_the_characters_first_one_is_used(client, livekit):
    resp = await client.post("/v1/sessions", json={"agent": "helper"}, headers=ORIGIN)
    body = await resp.json()
    assert body["mode"] == "voice"
    assert (await _room_config(livekit, body["room_name"])).mode == "voice"

    from token_server.app import CHARACTERS

    helper = client.app[CHARACTERS]["helper"]
    client.app[CHARACTERS]["helper"] = helper.model_copy(update={"modes": ["text"]})
    resp = await client.post("/v1/sessions", json={"agent": "helper"}, headers=ORIGIN)
    assert (await resp.json())["mode"] == "text"


async def test_a_mode_the_character_does_not_offer_is_a_422_naming_it(client, livekit):
    from token_server.app import CHARACTERS

    helper = client.app[CHARACTERS]["helper"]
    client.app[CHARACTERS]["helper"] = helper.model_copy(update={"modes": ["text"]})
    resp = await client.post("/v1/sessions", json={"agent": "helper", "mode": "voice"}, headers=ORIGIN)
    assert resp.status == 422, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == "validation_error"
    (detail,) = error["details"]
    assert (detail["field"], detail["type"]) == ("mode", "mode_not_offered")
    assert "voice" in detail["message"] and "only: text" in detail["message"]
    assert await livekit.new_rooms() == {}  # nothing created, no slot taken


@pytest.mark.parametrize("mode", ["video", "", None, 1, ["text"]])
async def test_a_mode_is_voice_or_text(client, mode):
    resp = await client.post("/v1/sessions", json={"agent": "helper", "mode": mode}, headers=ORIGIN)
    if mode is None:  # JSON null: the field is not set
        assert resp.status == 201
        return
    assert resp.status == 422
    assert [d["field"] for d in (await resp.json())["error"]["details"]] == ["mode"]


async def test_a_character_that_keeps_mode_from_pages_refuses_it_but_a_grant_may_set_it(client, livekit):
    from token_server.app import CHARACTERS

    helper = client.app[CHARACTERS]["helper"]
    client.app[CHARACTERS]["helper"] = helper.model_copy(update={"browser_overrides": ["language"]})
    resp = await client.post("/v1/sessions", json={"agent": "helper", "mode": "text"}, headers=ORIGIN)
    assert resp.status == 403
    error = (await resp.json())["error"]
    assert error["code"] == "override_not_allowed" and error["details"]["fields"] == ["mode"]

    now = int(time.time())
    claims = {
        "agent": "helper",
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
        "mode": "text",
    }
    grant = jwt.encode(claims, GRANT_KEY, algorithm="HS256")
    resp = await client.post("/v1/sessions", json={"agent": "helper", "grant": grant}, headers=ORIGIN)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["mode"] == "text"

    resp = await client.post("/v1/sessions", json={"agent": "helper", "mode": "text"}, headers=KEY)
    assert (await resp.json())["mode"] == "text"


def test_a_transcript_says_whether_it_was_spoken_or_typed():
    batch = EventBatch.model_validate(
        {
            "events": [
                {"type": "transcript", "role": "user", "text": "spoken"},
                {"type": "transcript", "role": "user", "text": "typed", "source": "text"},
            ]
        }
    )
    assert [e.source for e in batch.events] == ["voice", "text"]  # type: ignore[union-attr]
    with pytest.raises(ValidationError):
        EventBatch.model_validate(
            {"events": [{"type": "transcript", "role": "user", "text": "x", "source": "fax"}]}
        )


async def test_the_log_keeps_whether_a_turn_was_typed(client, livekit):
    started = await (
        await client.post("/v1/sessions", json={"agent": "helper", "mode": "text"}, headers=ORIGIN)
    ).json()
    sid = started["session_id"]
    events = [
        {"type": "transcript", "role": "agent", "source": "text", "text": "Hello there!"},
        {"type": "transcript", "role": "user", "source": "text", "text": "Where is my order?"},
        {"type": "transcript", "role": "user", "text": "Spoken by an older worker"},
    ]
    token = sign_ingest_token(API_KEY, API_SECRET, sid)
    resp = await client.post(
        f"/internal/v1/sessions/{sid}/events",
        json={"events": events},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status == 200, await resp.text()
    logs = await (await client.get(f"/v1/sessions/{sid}/logs?types=transcript", headers=KEY)).json()
    assert [(e["role"], e["source"], e["text"]) for e in logs["events"]] == [
        ("agent", "text", "Hello there!"),
        ("user", "text", "Where is my order?"),
        ("user", "voice", "Spoken by an older worker"),
    ]
