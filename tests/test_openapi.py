"""`GET /openapi.json`: a valid OpenAPI 3.1 document of every route, holding no secret."""

from __future__ import annotations

import json

import pytest
from openapi_spec_validator import validate

from contract import load_characters
from testkit.livekit_server import API_SECRET
from tests.conftest import TEST_CHARACTERS

pytestmark = pytest.mark.integration


def documented_path(route) -> str:
    info = route.resource.get_info()
    if "prefix" in info:  # a static directory: one file per name
        return info["prefix"] + "/{filename}"
    return info.get("formatter") or info["path"]


async def test_the_document_is_valid_openapi_3_1_and_needs_no_key(client):
    resp = await client.get("/openapi.json")
    assert resp.status == 200 and resp.content_type == "application/json"
    doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    validate(doc)  # openapi-spec-validator picks the 3.1 validator from the version


async def test_every_route_is_in_the_document_with_its_answers(client):
    doc = await (await client.get("/openapi.json")).json()
    routes = {
        (route.method.lower(), documented_path(route))
        for route in client.app.router.routes()
        if route.method != "HEAD"  # aiohttp adds a HEAD beside every GET
    }
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert routes == documented
    schemas = doc["components"]["schemas"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert any(code.startswith("2") for code in op["responses"]), (method, path)
            for code, answer in op["responses"].items():
                if code.startswith(("4", "5")) and code != "503":
                    ref = answer["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/ErrorResponse", (method, path, code)
            for param in op["parameters"]:
                assert param["in"] in ("path", "query", "header") and "schema" in param
    assert {"StartSessionRequest", "StartSessionResponse", "EventBatch", "ErrorResponse"} <= set(schemas)
    list_params = {p["name"] for p in doc["paths"]["/v1/sessions"]["get"]["parameters"]}
    assert list_params == {"character", "status", "since", "limit", "cursor"}


async def test_the_document_holds_no_secret(client):
    text = json.dumps(await (await client.get("/openapi.json")).json())
    assert API_SECRET not in text
    assert "server-key-1" not in text and "server-key-2" not in text
    for character in load_characters(TEST_CHARACTERS).values():
        assert character.system_prompt[:40] not in text
