"""Sessions and their status history.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the sessions and session_status_changes tables."""
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("character", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.String(200)),
        sa.Column("room_name", sa.String(128), nullable=False, unique=True),
        sa.Column("participant_identity", sa.String(128), nullable=False),
        sa.Column("origin", sa.String(2048)),
        sa.Column("origin_url", sa.String(2048)),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("idempotency_key", sa.String(255)),
        sa.Column("request_hash", sa.String(64)),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("joined_at", _TS),
        sa.Column("ended_at", _TS),
        sa.Column("join_deadline", _TS, nullable=False),
        sa.Column("max_end_at", _TS, nullable=False),
        sa.Column("usage", sa.JSON),
    )
    op.create_index("ix_sessions_character_status", "sessions", ["character", "status"])
    op.create_index("ix_sessions_status_created", "sessions", ["status", "created_at"])
    op.create_index("ux_sessions_idempotency", "sessions", ["character", "idempotency_key"], unique=True)
    op.create_table(
        "session_status_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "session_id", sa.String(64), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(200)),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_index("ix_status_changes_session", "session_status_changes", ["session_id", "id"])


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("session_status_changes")
    op.drop_table("sessions")
