"""worker heartbeats in Postgres, and who holds each delivery's lease

`worker_processes` holds one row per running worker process, refreshed every two seconds;
`notifications.leased_by` names the process that claimed a `sending` row. The reconciler takes
back the rows of a process that stopped beating within RECOVERY_SECONDS, instead of waiting for
the lease (the job timeout plus a margin). Rows claimed by the previous release have no
`leased_by` and keep the lease rule.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_processes",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("instance", sa.String(length=200), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_processes")),
    )
    op.add_column("notifications", sa.Column("leased_by", sa.UUID(), nullable=True))


def downgrade() -> None:
    op.drop_column("notifications", "leased_by")
    op.drop_table("worker_processes")
