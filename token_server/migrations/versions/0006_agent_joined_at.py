"""When the agent joined, and by when it must, so a dropped dispatch ends the session.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add sessions.agent_joined_at and sessions.agent_deadline.

    Sessions recorded before this get no agent deadline: whether their agent joined was
    not recorded, so none is ended for it (their join window and maximum duration still
    apply).
    """
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("agent_joined_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("agent_deadline", sa.DateTime(timezone=True)))


def downgrade() -> None:
    """Drop sessions.agent_joined_at and sessions.agent_deadline."""
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("agent_deadline")
        batch.drop_column("agent_joined_at")
