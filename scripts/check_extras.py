"""Check that each role installs only what it needs (`make check-extras`, run by CI).

For every extra in pyproject.toml, resolve `.[extra]` alone with uv (a few seconds
against the package index; not a pytest, because the tests run in a network namespace
with no way out) and check what must stay out of it: the token server's install has no
torch and no livekit-agents, the worker's no torch, the voice service's no
livekit-agents. Then install `.[server]` and `.[worker]` each into a throwaway venv and
import every module of the token server, and of the worker, from it: the declared list is
enough to run each.

    .venv/bin/python scripts/check_extras.py
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
UV = Path(sys.executable).parent / "uv"

# What each role's install must not hold, and why.
KEPT_OUT: dict[str, dict[str, str]] = {
    "server": {
        "torch": "the token server never runs a model",
        "chatterbox-tts": "the voice service is deployed apart",
        "livekit-agents": "the worker is deployed apart",
    },
    "worker": {
        "torch": "the worker talks to the voice service over HTTP",
        "chatterbox-tts": "the voice service is deployed apart",
    },
    "voice": {
        "livekit-agents": "the voice service imports nothing of the worker's",
    },
}
# What each role's install must hold: the thing it is for.
KEPT_IN = {"server": "livekit-api", "worker": "livekit-agents", "voice": "chatterbox-tts"}


def resolve(extra: str) -> set[str]:
    """The distribution names `pip install '.[extra]'` would install, as uv resolves them."""
    out = subprocess.run(  # noqa: S603 - uv from this venv, fixed arguments
        [str(UV), "pip", "compile", "pyproject.toml", "--extra", extra, "--python-version", "3.11"]
        + ["--no-header", "--no-annotate", "--quiet"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {re.split(r"[=<>\[; ]", line, maxsplit=1)[0].lower() for line in out.splitlines() if line.strip()}


# What each role's own venv must import, and what must not come with it.
IMPORTED_ALONE: dict[str, tuple[str, set[str]]] = {
    "server": ("token_server", {"torch", "livekit.agents", "voice_service", "agent"}),
    "worker": ("agent", {"torch", "chatterbox", "token_server"}),
}
# What each role's deployment runs once on its own install, before it starts.
PREPARED_ALONE: dict[str, list[str]] = {"worker": ["-m", "agent", "download-files"]}


def import_alone(extra: str) -> None:
    """Install `.[extra]` into a fresh venv and import every module of its package there.

    The Alembic migrations are left out (alembic runs them, they cannot be imported), and
    so are the `__main__` modules, which run when imported.
    """
    package, kept_out = IMPORTED_ALONE[extra]
    with tempfile.TemporaryDirectory(prefix=f"oshara-{extra}-only-") as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([str(UV), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)  # noqa: S603
        python = venv / "bin" / "python"
        subprocess.run(  # noqa: S603
            [str(UV), "pip", "install", "--quiet", "--python", str(python), f"{REPO}[{extra}]"], check=True
        )
        probe = (
            f"import importlib, pkgutil, sys, {package}\n"
            f"for m in pkgutil.walk_packages({package}.__path__, '{package}.'):\n"
            "    if '.migrations' not in m.name and not m.name.endswith('__main__'):\n"
            "        importlib.import_module(m.name)\n"
            f"heavy = {sorted(kept_out)!r}\n"
            "came = [name for name in heavy if name in sys.modules]\n"
            "assert not came, came\n"
        )
        subprocess.run([str(python), "-c", probe], check=True, cwd=tmp)  # noqa: S603 - outside the repo
        print(f"{extra}: every {package} module imports from '.[{extra}]' alone")
        if extra in PREPARED_ALONE:
            command = PREPARED_ALONE[extra]
            subprocess.run([str(python), *command], check=True, cwd=tmp, capture_output=True)  # noqa: S603
            print(f"{extra}: `python {' '.join(command)}` works from '.[{extra}]' alone")


def main() -> int:
    """Resolve every role, report what each holds, and fail on anything kept out that got in."""
    failures = []
    for extra, kept_out in KEPT_OUT.items():
        names = resolve(extra)
        print(f"{extra}: {len(names)} packages")
        if KEPT_IN[extra] not in names:
            failures.append(f"'.[{extra}]' lacks {KEPT_IN[extra]}")
        for name, why in kept_out.items():
            if name in names:
                failures.append(f"'.[{extra}]' installs {name}, but {why}")
    for extra in IMPORTED_ALONE:
        import_alone(extra)
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
