"""Live-session counters per character, so a start checks its limit in O(1).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create slot_counts and fill it from the sessions live now."""
    op.create_table(
        "slot_counts",
        sa.Column("scope", sa.String(64), primary_key=True),
        sa.Column("live", sa.Integer, nullable=False),
    )
    op.execute(
        "INSERT INTO slot_counts (scope, live) "
        "SELECT character, COUNT(*) FROM sessions WHERE status IN ('pending', 'active') GROUP BY character"
    )


def downgrade() -> None:
    """Drop slot_counts."""
    op.drop_table("slot_counts")
