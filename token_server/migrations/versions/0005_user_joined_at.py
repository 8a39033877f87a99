"""When the user (not the agent) joined, so the join window is about the user.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add sessions.user_joined_at; sessions already active count as joined."""
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("user_joined_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE sessions SET user_joined_at = joined_at WHERE joined_at IS NOT NULL")


def downgrade() -> None:
    """Drop sessions.user_joined_at."""
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("user_joined_at")
