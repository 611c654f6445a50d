"""event sequence numbers; idempotency keyed by operation, storing the result

- `notifications.event_seq` and `notification_events.sequence`: every event is numbered
  1, 2, 3... per notification, so a live subscriber can tell a gap. Existing rows are
  numbered in the order they were written.
- `idempotency_keys` is keyed by (api key, operation, key) and stores the created ids
  (`result_ids`) instead of one REST response. Existing records get the operation their
  stored response shows and the ids in it; their fingerprints were computed the old way, so
  repeating such a request within its 24 h is refused as a different body (422), never
  created twice. `response_status`/`response_body` stay (nullable, unused) so the previous
  release keeps working during a rolling update; a later migration drops them.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "notifications",
        sa.Column("event_seq", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column("notification_events", sa.Column("sequence", sa.Integer(), nullable=True))
    op.execute(
        """
        UPDATE notification_events e SET sequence = numbered.n
          FROM (SELECT id, row_number() OVER (PARTITION BY notification_id ORDER BY id) AS n
                  FROM notification_events) numbered
         WHERE e.id = numbered.id
        """
    )
    op.execute(
        """
        UPDATE notifications n SET event_seq = counted.n
          FROM (SELECT notification_id, count(*) AS n FROM notification_events
                 GROUP BY notification_id) counted
         WHERE n.id = counted.notification_id
        """
    )

    op.add_column(
        "idempotency_keys",
        sa.Column(
            "operation", sa.String(length=64), server_default="send_notification", nullable=False
        ),
    )
    op.add_column(
        "idempotency_keys",
        sa.Column("result_ids", postgresql.ARRAY(sa.UUID()), nullable=True),
    )
    op.execute(
        """
        UPDATE idempotency_keys SET
               operation = CASE WHEN body ? 'notifications' THEN 'send_notifications'
                                ELSE 'send_notification' END,
               result_ids = CASE WHEN body ? 'notifications'
                    THEN ARRAY(SELECT (item ->> 'id')::uuid
                                 FROM jsonb_array_elements(body -> 'notifications') item)
                    ELSE ARRAY[(body ->> 'id')::uuid] END
          FROM (SELECT api_key_id AS owner, key AS k,
                       convert_from(response_body, 'UTF8')::jsonb AS body
                  FROM idempotency_keys WHERE response_body IS NOT NULL) stored
         WHERE api_key_id = stored.owner AND key = stored.k
        """
    )
    op.drop_constraint("pk_idempotency_keys", "idempotency_keys", type_="primary")
    op.create_primary_key(
        "pk_idempotency_keys", "idempotency_keys", ["api_key_id", "operation", "key"]
    )


def downgrade() -> None:
    op.execute("DELETE FROM idempotency_keys WHERE operation <> 'send_notification'")
    op.drop_constraint("pk_idempotency_keys", "idempotency_keys", type_="primary")
    op.create_primary_key("pk_idempotency_keys", "idempotency_keys", ["api_key_id", "key"])
    op.drop_column("idempotency_keys", "result_ids")
    op.drop_column("idempotency_keys", "operation")
    op.drop_column("notification_events", "sequence")
    op.drop_column("notifications", "event_seq")
