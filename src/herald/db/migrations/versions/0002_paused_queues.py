"""paused queues

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "paused_queues",
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column(
            "paused_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("paused_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("queue", name=op.f("pk_paused_queues")),
    )


def downgrade() -> None:
    op.drop_table("paused_queues")
