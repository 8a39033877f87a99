"""Character versions, the version each session ran, and post-call analysis runs.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create character_versions and session_analyses; add two columns.

    `sessions.character_version` and `webhook_deliveries.event`.
    Sessions recorded before this name no version (they ran before versions were kept);
    their deliveries were all `session.ended`.
    """
    op.create_table(
        "character_versions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("character", sa.String(64), nullable=False),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("has_analysis", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_character_versions_character", "character_versions", ["character", "created_at"])
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("character_version", sa.String(64)))
        batch.create_index("ix_sessions_character_version", ["character_version", "created_at"])
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("event", sa.String(32), nullable=False, server_default="session.ended"))
    op.create_table(
        "session_analyses",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "session_id", sa.String(64), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("character_version", sa.String(64), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("model", sa.String(200)),
        sa.Column("result", sa.JSON),
        sa.Column("error", sa.String(500)),
        sa.Column("usage", sa.JSON),
    )
    op.create_index("ix_session_analyses_due", "session_analyses", ["status", "next_attempt_at"])
    op.create_index("ix_session_analyses_session", "session_analyses", ["session_id", "created_at"])


def downgrade() -> None:
    """Drop what upgrade() made."""
    op.drop_index("ix_session_analyses_session", "session_analyses")
    op.drop_index("ix_session_analyses_due", "session_analyses")
    op.drop_table("session_analyses")
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("event")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_index("ix_sessions_character_version")
        batch.drop_column("character_version")
    op.drop_index("ix_character_versions_character", "character_versions")
    op.drop_table("character_versions")
