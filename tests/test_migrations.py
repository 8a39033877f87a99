"""The Alembic migrations build exactly the schema `token_server/db.py` defines.

A fresh database of each kind is migrated to head and inspected: the same tables, the
same columns (with their nullability), the same indexes and unique constraints on the
same columns, and no
difference Alembic's autogenerate would find. A table or index added to `db.py` without
a migration (or the other way round) fails here, not on a deployed server.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from token_server.db import Database, metadata, migrate

pytestmark = pytest.mark.integration

# Alembic's own bookkeeping table, which the code does not define.
ALEMBIC_TABLES = {"alembic_version"}


def _schema(conn: sa.Connection) -> dict[str, Any]:
    inspector = sa.inspect(conn)
    out: dict[str, Any] = {}
    for table in sorted(set(inspector.get_table_names()) - ALEMBIC_TABLES):
        columns = {c["name"]: c["nullable"] for c in inspector.get_columns(table)}
        indexes = {
            i["name"]: (tuple(i["column_names"]), bool(i["unique"]))
            for i in inspector.get_indexes(table)
            # PostgreSQL lists the index behind each unique constraint too; those are compared below.
            if not i.get("duplicates_constraint")
        }
        unique = sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table))
        primary_key = tuple(inspector.get_pk_constraint(table)["constrained_columns"])
        out[table] = {"columns": columns, "indexes": indexes, "unique": unique, "primary_key": primary_key}
    return out


def _defined() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for table in sorted(metadata.tables.values(), key=lambda t: t.name):
        out[table.name] = {
            "columns": {c.name: bool(c.nullable) for c in table.columns},
            "indexes": {i.name: (tuple(c.name for c in i.columns), bool(i.unique)) for i in table.indexes},
            # (a column's `unique=True` is a UniqueConstraint of its table too)
            "unique": sorted(
                tuple(c.name for c in u.columns)
                for u in table.constraints
                if isinstance(u, sa.UniqueConstraint)
            ),
            "primary_key": tuple(c.name for c in table.primary_key.columns),
        }
    return out


def _differences(conn: sa.Connection) -> list[Any]:
    return compare_metadata(MigrationContext.configure(conn), metadata)


async def test_migrations_build_the_tables_columns_and_indexes_the_code_defines(database_url):
    db = Database(database_url)
    try:
        await migrate(db)
        async with db.engine.connect() as conn:
            migrated = await conn.run_sync(_schema)
            differences = await conn.run_sync(_differences)
    finally:
        await db.dispose()
    assert migrated == _defined()
    assert differences == []
