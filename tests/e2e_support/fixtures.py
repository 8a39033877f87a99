"""Fixtures of the e2e tests: the voice service, shared by the run, and the skip outside the namespace."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dev.livekit_server import LiveKitServerMissing, find_binary

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
    models = Path(tmp_path_factory.mktemp("tiny-models"))
    # made by the service's own command, so torch stays out of the test process
    subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "voice_service", "make-tiny-model", str(models / "chatterbox-en-v1")],
        check=True,
        capture_output=True,
    )
    service = start_voice_service(Path(tmp_path_factory.mktemp("voice-service")), models)
    yield service
    service.process.stop()
