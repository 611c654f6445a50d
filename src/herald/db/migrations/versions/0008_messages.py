"""messages: one template to one recipient, and the notifications it made

`messages` holds what a `POST /v1/messages` decided at acceptance: the template version used,
the recipient, the routing, the channels used and the ones skipped with their reason, the
end of the recipient's quiet hours when they deferred it, and for fallback routing the
rendered content of the channels still to try. `notifications.message_id` names the message
that made a notification (NULL for notifications sent directly).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("api_key_id", sa.UUID(), nullable=False),
        sa.Column("template_key", sa.String(length=255), nullable=False),
        sa.Column("template_version", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.Text(), nullable=True),
        sa.Column("locale", sa.String(length=35), nullable=True),
        sa.Column("routing", sa.String(length=16), nullable=False),
        sa.Column("channels", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("skipped", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("pending", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("deferred_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("send_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=True),
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("routing IN ('all', 'fallback')", name=op.f("ck_messages_routing")),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_messages_api_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    op.create_index(
        "ix_messages_key_created",
        "messages",
        ["api_key_id", sa.text("created_at DESC"), sa.text("id DESC")],
    )
    op.add_column("notifications", sa.Column("message_id", sa.UUID(), nullable=True))
    op.create_foreign_key(
        op.f("fk_notifications_message_id_messages"),
        "notifications",
        "messages",
        ["message_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_index(
        "ix_notifications_message",
        "notifications",
        ["message_id"],
        postgresql_where=sa.text("message_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_message", table_name="notifications")
    op.drop_constraint(
        op.f("fk_notifications_message_id_messages"), "notifications", type_="foreignkey"
    )
    op.drop_column("notifications", "message_id")
    op.drop_index("ix_messages_key_created", table_name="messages")
    op.drop_table("messages")
