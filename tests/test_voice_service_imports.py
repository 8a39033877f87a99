"""The voice service deploys apart from the worker: importing it loads nothing of the agent's.

Each check runs in a fresh interpreter, so what this test process has imported already
cannot hide a stray import.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

_LOADED = """
import importlib, json, pkgutil, sys
for name in {modules}:
    module = importlib.import_module(name)
    if name == "voice_service":
        for info in pkgutil.walk_packages(module.__path__, "voice_service."):
            importlib.import_module(info.name)
print(json.dumps(sorted(sys.modules)))
"""


def _modules_loaded_by(*modules: str) -> set[str]:
    result = subprocess.run(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-c", _LOADED.format(modules=list(modules))],
        check=True,
        capture_output=True,
        text=True,
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def _top_level(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


def test_every_voice_service_module_imports_without_the_agent_or_livekit() -> None:
    loaded = _top_level(_modules_loaded_by("voice_service"))
    assert "voice_service" in loaded
    assert not loaded & {"agent", "livekit"}, sorted(loaded & {"agent", "livekit"})
    # torch and chatterbox load only when a model does, not on import
    assert not loaded & {"torch", "chatterbox"}, sorted(loaded & {"torch", "chatterbox"})


def test_the_protocol_the_agent_imports_pulls_in_neither_side() -> None:
    loaded = _top_level(_modules_loaded_by("voice_service.protocol"))
    heavy = {"torch", "chatterbox", "numpy", "aiohttp", "livekit", "agent"}
    assert not loaded & heavy, sorted(loaded & heavy)
