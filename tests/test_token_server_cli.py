"""`python -m token_server`: start-up failures are one clear line and a failing exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "token_server", "--port", "0"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_unreachable_database_is_one_line_without_the_password():
    done = run({"DATABASE_URL": "postgresql+asyncpg://oshara:hunter2@127.0.0.1:9/nowhere"})
    assert done.returncode == 2
    assert "error: cannot start" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_bad_character_file_names_the_file_and_field(tmp_path):
    (tmp_path / "broken.yaml").write_text("slug: broken\nname: B\nsystem_prompt: hi\nlanguage: klingonese\n")
    done = run({"CHARACTERS_DIR": str(tmp_path)})
    assert done.returncode == 2
    assert "broken.yaml" in done.stderr and "language" in done.stderr
    assert "Traceback" not in done.stderr
