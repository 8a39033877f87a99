"""Fixtures of the e2e tests: the voice service, shared by the run, and the skip outside the namespace."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dev.livekit_server import LiveKitServerMissing, find_binary
from testkit.tts.engine import tiny_model_root

from .stack import ADDRESSES, VoiceService, start_voice_service


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """e2e tests move media: they run only inside the test run's own network namespace."""
    if len(ADDRESSES) == 2:
        return
    skip = pytest.mark.skip(
        reason="e2e tests run only inside their network namespace: `make test` (scripts/netns.sh)"
    )
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def livekit_binary() -> str:
    try:
        return find_binary()
    except LiveKitServerMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def voice_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceService]:
    """The real voice service with tiny random Chatterbox weights, for every e2e test."""
    # the run's shared tiny model, made by the service's own command: torch stays out of this process
    service = start_voice_service(Path(tmp_path_factory.mktemp("voice-service")), tiny_model_root())
    yield service
    service.process.stop()
