"""`${ENV_NAME}` references: one resolver for the worker's MCP headers and the webhook secret."""

from __future__ import annotations

import pytest

from contract.env_refs import MissingEnvironment, resolve_env_refs
from token_server.post_call import resolve_secret

pytestmark = pytest.mark.unit


def test_every_reference_is_replaced_and_other_text_kept():
    environ = {"TOK": "s3cret", "ORG": "acme"}
    assert resolve_env_refs("Bearer ${TOK} for ${ORG}", environ) == "Bearer s3cret for acme"
    assert resolve_env_refs("no references, $TOK or {TOK}", environ) == "no references, $TOK or {TOK}"


@pytest.mark.parametrize("environ", [{}, {"TOK": ""}], ids=["unset", "empty"])
def test_an_unset_or_empty_variable_is_missing(environ):
    with pytest.raises(MissingEnvironment) as exc:
        resolve_env_refs("${TOK}-${OTHER}", environ)
    assert exc.value.names == ["OTHER", "TOK"]


def test_the_webhook_secret_resolves_the_same_way(monkeypatch):
    monkeypatch.setenv("HOOK_SECRET", "abc")
    monkeypatch.setenv("HOOK_EMPTY", "")
    monkeypatch.delenv("HOOK_UNSET", raising=False)
    assert resolve_secret("${HOOK_SECRET}") == "abc"
    assert resolve_secret("literal") == "literal"
    assert resolve_secret(None) is None
    # A secret that would be missing or empty is none at all: the delivery says so.
    assert resolve_secret("${HOOK_EMPTY}") is None
    assert resolve_secret("${HOOK_UNSET}") is None
