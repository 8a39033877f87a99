"""Reloading the character files without a restart: `POST /v1/characters/reload` and SIGHUP.

The whole directory is loaded and validated first; a bad file is refused with the
error start-up would give, and the set already loaded stays live. A good set replaces
it at once (one step of the event loop): new sessions get the new versions, and
sessions already started keep the version they recorded.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from contract import Character, CharacterFileError, load_characters

from .access import require_api_key
from .character_versions import CharacterVersions
from .errors import ValidationFailed
from .settings import Settings
from .strict_json import json_response

log = logging.getLogger("token_server.characters")


def file_error(exc: CharacterFileError | FileNotFoundError) -> ValidationFailed:
    """A refused reload as an API error: the file by name (not the server's path) and each problem."""
    if isinstance(exc, FileNotFoundError):
        return ValidationFailed("The characters directory does not exist.", code="character_file_invalid")
    details = []
    for problem in exc.problems:
        field, _, message = problem.partition(": ")
        details.append({"file": exc.path.name, "field": field, "message": message})
    return ValidationFailed(
        f"{exc.path.name}: " + "; ".join(exc.problems) + " (the characters already loaded stay live)",
        code="character_file_invalid",
        details=details,
    )


class CharacterReload:
    """Loads the characters directory again and swaps the live set when every file is good."""

    def __init__(
        self,
        settings: Settings,
        characters: dict[str, Character],
        versions: dict[str, str],
        registry: CharacterVersions,
    ) -> None:
        """Replace `characters` and `versions` (slug → version) in place: every holder sees the new set."""
        self._settings = settings
        self._dir: Path = settings.characters_dir
        self._characters = characters
        self._versions = versions
        self._registry = registry
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task] = set()

    async def reload(self) -> list[dict[str, Any]]:
        """Load, validate, record the versions and go live; returns each character and its version.

        Raises:
            CharacterFileError, FileNotFoundError: nothing changed.
        """
        async with self._lock:
            # Reading and parsing the files is blocking work: off the event loop.
            loaded = await asyncio.to_thread(load_characters, self._dir)
            versions = await self._registry.register(loaded)
            before = dict(self._versions)
            self._characters.clear()
            self._characters.update(loaded)
            self._versions.clear()
            self._versions.update(versions)
        out: list[dict[str, Any]] = [
            {"slug": slug, "version": version, "changed": before.get(slug) != version}
            for slug, version in sorted(versions.items())
        ]
        removed = sorted(set(before) - set(versions))
        log.info(
            "characters reloaded",
            extra={
                "characters": len(out),
                "changed": sum(1 for c in out if c["changed"]),
                "removed": removed,
            },
        )
        return out

    async def view(self, request: web.Request) -> web.Response:
        """`POST /v1/characters/reload`: 200 with every character's version, or 422 naming the bad file."""
        require_api_key(request, self._settings.token_server_api_keys)
        try:
            characters = await self.reload()
        except (CharacterFileError, FileNotFoundError) as exc:
            raise file_error(exc) from None
        return json_response({"characters": characters})

    def on_signal(self) -> None:
        """SIGHUP: reload in the background; a bad file is logged and nothing changes."""
        task = asyncio.get_running_loop().create_task(self._reload_logged(), name="characters-reload")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _reload_logged(self) -> None:
        try:
            await self.reload()
        except CharacterFileError as exc:
            log.error("characters not reloaded", extra={"file": exc.path.name, "problems": exc.problems})
        except FileNotFoundError:
            log.error("characters not reloaded: the directory does not exist")
        except Exception:
            log.exception("characters not reloaded")

    async def aclose(self) -> None:
        """Wait for a reload the signal started."""
        await asyncio.gather(*self._pending, return_exceptions=True)
