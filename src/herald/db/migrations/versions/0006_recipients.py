"""recipients, their push tokens and preferences; notifications remember their recipient

- `recipients` is keyed by (api key, the client's own id): addresses, locale, timezone, a
  small custom `data` object and the preferences (one JSONB object: channels, categories,
  quiet hours).
- `recipient_push_tokens`: a token belongs to one recipient of a key (posting it for another
  recipient moves it: a device that changes hands). Deleting the recipient deletes them.
- `notifications.recipient_id` (nullable): set by messages sent to a recipient, so that
  deleting the recipient can mask the addresses of its history.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recipients",
        sa.Column("api_key_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("whatsapp", sa.Text(), nullable=True),
        sa.Column("locale", sa.String(length=35), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column(
            "data", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.Column(
            "preferences",
            postgresql.JSONB(),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name=op.f("fk_recipients_api_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("api_key_id", "id", name=op.f("pk_recipients")),
    )
    op.create_table(
        "recipient_push_tokens",
        sa.Column("api_key_id", sa.UUID(), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("recipient_id", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id", "recipient_id"],
            ["recipients.api_key_id", "recipients.id"],
            name=op.f("fk_recipient_push_tokens_api_key_id_recipients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("api_key_id", "token", name=op.f("pk_recipient_push_tokens")),
    )
    op.create_index(
        "ix_recipient_push_tokens_recipient",
        "recipient_push_tokens",
        ["api_key_id", "recipient_id"],
    )
    op.add_column("notifications", sa.Column("recipient_id", sa.Text(), nullable=True))
    op.create_index(
        "ix_notifications_key_recipient",
        "notifications",
        ["api_key_id", "recipient_id"],
        postgresql_where=sa.text("recipient_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_key_recipient", table_name="notifications")
    op.drop_column("notifications", "recipient_id")
    op.drop_index("ix_recipient_push_tokens_recipient", table_name="recipient_push_tokens")
    op.drop_table("recipient_push_tokens")
    op.drop_table("recipients")
