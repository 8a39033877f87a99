"""Idempotency keys are unique across the server, not per character.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Replace the (character, key) unique index with one on the key alone.

    Where two characters' sessions hold the same key, only the newest keeps it: a key
    answers for one request, and older holders are past or near the end of the window.
    """
    op.execute(
        sa.text(
            "UPDATE sessions SET idempotency_key = NULL WHERE idempotency_key IS NOT NULL AND EXISTS ("
            " SELECT 1 FROM sessions AS newer WHERE newer.idempotency_key = sessions.idempotency_key"
            " AND (newer.created_at > sessions.created_at"
            " OR (newer.created_at = sessions.created_at AND newer.id > sessions.id)))"
        )
    )
    with op.batch_alter_table("sessions") as batch:
        batch.drop_index("ux_sessions_idempotency")
        batch.create_index("ux_sessions_idempotency_key", ["idempotency_key"], unique=True)


def downgrade() -> None:
    """Scope keys per character again."""
    with op.batch_alter_table("sessions") as batch:
        batch.drop_index("ux_sessions_idempotency_key")
        batch.create_index("ux_sessions_idempotency", ["character", "idempotency_key"], unique=True)
