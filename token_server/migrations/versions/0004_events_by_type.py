"""Index session events by type, so form answers and filtered logs skip the rest.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ix_session_events_session_type_seq."""
    op.create_index("ix_session_events_session_type_seq", "session_events", ["session_id", "type", "seq"])


def downgrade() -> None:
    """Drop it."""
    op.drop_index("ix_session_events_session_type_seq", "session_events")
