"""Session grants work once: the ids of used ones are kept until they have expired.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create session_grants."""
    op.create_table(
        "session_grants",
        sa.Column("jti", sa.String(128), primary_key=True),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("forget_after", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_session_grants_forget_after", "session_grants", ["forget_after"])


def downgrade() -> None:
    """Drop session_grants."""
    op.drop_index("ix_session_grants_forget_after", "session_grants")
    op.drop_table("session_grants")
