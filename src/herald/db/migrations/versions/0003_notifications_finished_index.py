"""index finished notifications by updated_at

The dashboard's throughput chart reads the notifications finished in the last hour, and its
history clean-up deletes those finished more than N days ago; both were sequential scans of
the whole table (about 40 ms at 100 000 rows, growing with history). Partial, so rows still
in flight never enter it.

Built inside the migration's transaction (migrate.py hands Alembic a connection already in
one, so CONCURRENTLY is not available): writes to `notifications` wait while it builds, about
a second per million rows in the table.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_FINISHED = sa.text("status IN ('sent', 'delivered', 'failed', 'cancelled')")


def upgrade() -> None:
    op.create_index(
        "ix_notifications_finished",
        "notifications",
        ["updated_at"],
        unique=False,
        postgresql_where=_FINISHED,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_notifications_finished", table_name="notifications", postgresql_where=_FINISHED
    )
