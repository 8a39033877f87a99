"""Character versions: the content hash of a character's public definition, kept once each.

A version is what a character file said when a session ran, minus its secrets: the
values of MCP server headers and the webhook secret are replaced by `[redacted]` (the
names of the headers stay, so adding one is a new version), and so are the query
strings and user-info of its URLs, where a token may ride. Editing a file and
restarting, or reloading, makes a new version; an unchanged file keeps its version.
Every session records the version that ran it, so an old session still shows, and can
be analysed with, the definition it ran.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from contract import Character
from contract.redaction import REDACTED, redact_url

from .clock import iso, utcnow
from .db import Database, character_versions, is_sqlite, sessions

# Hex digits of the SHA-256 a version is named by: 64 bits, far from any collision among
# the versions of one deployment.
VERSION_LENGTH = 16
VERSION_PATTERN = r"^[0-9a-f]{16}$"


def public_definition(character: Character) -> dict[str, Any]:
    """`character` as JSON with every secret value replaced by `[redacted]`."""
    definition = character.model_dump(mode="json")
    for server in definition["mcp_servers"]:
        server["headers"] = dict.fromkeys(server["headers"], REDACTED)
        server["url"] = redact_url(server["url"])
    if definition.get("webhook_secret") is not None:
        definition["webhook_secret"] = REDACTED
    for key in ("webhook_url", "reference_audio_url"):
        if definition.get(key) is not None:
            definition[key] = redact_url(definition[key])
    return definition


def version_of(definition: dict[str, Any]) -> str:
    """The version name of a public definition: its canonical JSON's SHA-256, shortened."""
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:VERSION_LENGTH]


class CharacterVersions:
    """Records the versions of the loaded characters and reads them back."""

    def __init__(self, db: Database) -> None:
        """Use `db`, already migrated."""
        self._db = db

    async def register(self, characters: dict[str, Character]) -> dict[str, str]:
        """Store the version of each character not stored yet; returns each slug's version."""
        rows: list[dict[str, Any]] = []
        for slug, character in characters.items():
            definition = public_definition(character)
            rows.append(
                {
                    "id": version_of(definition),
                    "character": slug,
                    "definition": definition,
                    "has_analysis": character.analysis is not None,
                    "created_at": utcnow(),
                }
            )
        if rows:
            await self._db.write(_insert_versions, rows)
        return {row["character"]: row["id"] for row in rows}

    async def definition(self, version: str) -> tuple[str, Character] | None:
        """The character slug and the character as version `version` defined it, or None."""
        query = sa.select(character_versions.c.character, character_versions.c.definition).where(
            character_versions.c.id == version
        )
        async with self._db.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return row.character, Character.model_validate(row.definition)

    async def of_character(self, slug: str, *, current: str | None) -> list[dict[str, Any]]:
        """Every version of `slug`, newest first, with when sessions first and last ran it."""
        used = (
            sa.select(
                sessions.c.character_version.label("version"),
                sa.func.min(sessions.c.created_at).label("first_used_at"),
                sa.func.max(sessions.c.created_at).label("last_used_at"),
                sa.func.count().label("sessions"),
            )
            .where(sessions.c.character == slug, sessions.c.character_version.is_not(None))
            .group_by(sessions.c.character_version)
            .subquery()
        )
        query = (
            sa.select(character_versions, used.c.first_used_at, used.c.last_used_at, used.c.sessions)
            .outerjoin(used, used.c.version == character_versions.c.id)
            .where(character_versions.c.character == slug)
            .order_by(character_versions.c.created_at.desc(), character_versions.c.id)
        )
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            {
                "version": row.id,
                "current": row.id == current,
                "created_at": iso(row.created_at),
                "first_used_at": iso(row.first_used_at),
                "last_used_at": iso(row.last_used_at),
                "sessions": row.sessions or 0,
                "has_analysis": row.has_analysis,
                "definition": row.definition,
            }
            for row in rows
        ]


def _insert_versions(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    insert = sqlite_insert if is_sqlite(conn) else pg_insert
    conn.execute(insert(character_versions).values(rows).on_conflict_do_nothing(index_elements=["id"]))
