"""messages: indexes for the reconciler's fallback sweep and for retention

The sweep (`herald.messages.fallback.sweep`) looks for fallback messages that still have a
channel to try; `ix_messages_fallback_pending` holds only those rows, oldest first.
Retention deletes messages by age: `ix_messages_created`.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_created", "messages", ["created_at"])
    op.create_index(
        "ix_messages_fallback_pending",
        "messages",
        ["created_at"],
        postgresql_where=sa.text("routing = 'fallback' AND jsonb_array_length(pending) > 0"),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_fallback_pending", table_name="messages")
    op.drop_index("ix_messages_created", table_name="messages")
