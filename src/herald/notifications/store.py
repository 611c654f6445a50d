"""Reading notifications, and deleting finished history. Status changes are `transitions`'.

Reads are one statement each, on an autocommit connection, returning domain objects built
straight from rows (no ORM objects on the API's hottest paths). `owner` scopes a read to one
API key; None (an operator) reads everyone's.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import Row, and_, delete, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.db.models import Notification as NotificationRow
from herald.errors import InvalidInput
from herald.notifications.model import Event, Notification, NotificationPage
from herald.notifications.transitions import RETURNED
from herald.vocabulary import FINISHED, WAITING

# One round trip: the row, and its history as one JSON array that msgspec decodes straight
# into `Event`. Connections run in UTC (`herald.db.engine`), so the events' times read back
# exactly as the row's own.
_READ = text(
    """
    SELECT n.id, n.channel, n.recipient, n.status, n.priority, n.attempts, n.max_attempts,
           n.created_at, n.updated_at, n.subject, n.body, n.html, n.data, n.template,
           n.send_at, n.reference, n.metadata AS metadata_, n.next_attempt_at, n.provider,
           n.provider_message_id, n.error, n.sent_at,
           (SELECT coalesce(json_agg(json_build_object('status', e.status, 'at', e.created_at,
                                                       'attempt', e.attempt, 'detail', e.detail,
                                                       'sequence', e.sequence)
                                     ORDER BY e.id), '[]')::text
              FROM notification_events e
             WHERE e.notification_id = n.id) AS events
      FROM notifications n
     WHERE n.id = ANY(:ids) AND (CAST(:owner AS uuid) IS NULL OR n.api_key_id = :owner)
    """
)
_EVENTS = msgspec.json.Decoder(list[Event])


def to_domain(row: Row[Any], *, events: list[Event] | None = None) -> Notification:
    """A stored notification (a row of its columns, `metadata` labelled `metadata_`)."""
    return Notification(
        id=row.id,
        channel=row.channel,
        to=row.recipient,
        status=row.status,
        priority=row.priority,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        created_at=row.created_at,
        updated_at=row.updated_at,
        subject=row.subject,
        body=row.body,
        html=row.html,
        data=row.data,
        template=row.template,
        send_at=row.send_at,
        reference=row.reference,
        metadata=row.metadata_,
        next_attempt_at=row.next_attempt_at,
        provider=row.provider,
        provider_message_id=row.provider_message_id,
        error=row.error,
        sent_at=row.sent_at,
        events=events,
    )


async def read_many(
    connection: AsyncConnection, owner: uuid.UUID | None, ids: Sequence[uuid.UUID]
) -> list[Notification]:
    """The notifications with these ids (in this order, with every event); missing ones are
    left out."""
    rows = await connection.execute(_READ, {"ids": list(ids), "owner": owner})
    found = {row.id: to_domain(row, events=_EVENTS.decode(row.events)) for row in rows}
    return [found[i] for i in ids if i in found]


_READ_EVENTS = text(
    """
    SELECT e.notification_id,
           coalesce(json_agg(json_build_object('status', e.status, 'at', e.created_at,
                                               'attempt', e.attempt, 'detail', e.detail,
                                               'sequence', e.sequence)
                             ORDER BY e.id), '[]')::text AS events
      FROM notification_events e JOIN notifications n ON n.id = e.notification_id
     WHERE e.notification_id = ANY(:ids)
       AND (CAST(:owner AS uuid) IS NULL OR n.api_key_id = :owner)
     GROUP BY e.notification_id
    """
)


async def read_events_many(
    connection: AsyncConnection, owner: uuid.UUID | None, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Event]]:
    """The events of many notifications in one statement (a page's, for a DataLoader)."""
    rows = await connection.execute(_READ_EVENTS, {"ids": list(ids), "owner": owner})
    found = {row.notification_id: _EVENTS.decode(row.events) for row in rows}
    return {i: found.get(i, []) for i in ids}


async def owner_and_status(
    connection: AsyncConnection, notification_id: uuid.UUID
) -> tuple[uuid.UUID, str] | None:
    row = (
        await connection.execute(
            select(NotificationRow.api_key_id, NotificationRow.status).where(
                NotificationRow.id == notification_id
            )
        )
    ).first()
    return None if row is None else (row.api_key_id, row.status)


def encode_cursor(created_at: datetime, notification_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{notification_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (created_at, id) a cursor stands for; InvalidInput for one we never issued."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, ident = raw.partition("|")
        return datetime.fromisoformat(created), uuid.UUID(ident)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("cursor is not one this API returned") from None


async def list_page(
    connection: AsyncConnection,
    owner: uuid.UUID,
    *,
    status: str | None,
    channel: str | None,
    reference: str | None,
    limit: int,
    cursor: str | None,
) -> NotificationPage:
    """Newest first; the cursor is the last row's (created_at, id), so inserts never shift it."""
    query = select(*RETURNED).where(NotificationRow.api_key_id == owner)
    if status:
        query = query.where(NotificationRow.status == status)
    if channel:
        query = query.where(NotificationRow.channel == channel)
    if reference:
        query = query.where(NotificationRow.reference == reference)
    if cursor:
        created, ident = decode_cursor(cursor)
        query = query.where(
            or_(
                NotificationRow.created_at < created,
                and_(NotificationRow.created_at == created, NotificationRow.id < ident),
            )
        )
    query = query.order_by(NotificationRow.created_at.desc(), NotificationRow.id.desc())
    rows = list((await connection.execute(query.limit(limit + 1))).all())
    last = rows[limit - 1] if len(rows) > limit else None
    return NotificationPage(
        items=[to_domain(row) for row in rows[:limit]],
        next_cursor=encode_cursor(last.created_at, last.id) if last is not None else None,
    )


async def overdue(connection: AsyncConnection, grace_seconds: float, batch: int) -> list[Row[Any]]:
    """Waiting rows due for longer than the grace period: their job may have been lost."""
    rows = await connection.execute(
        select(*RETURNED)
        .where(
            NotificationRow.status.in_(WAITING),
            NotificationRow.next_attempt_at < func.now() - timedelta(seconds=grace_seconds),
        )
        .order_by(NotificationRow.next_attempt_at)
        .limit(batch)
    )
    return list(rows.all())


def _finished_before(cutoff: datetime) -> list[Any]:
    return [NotificationRow.status.in_(FINISHED), NotificationRow.updated_at < cutoff]


async def count_finished_before(connection: AsyncConnection, cutoff: datetime) -> int:
    count = await connection.scalar(select(func.count()).where(*_finished_before(cutoff)))
    return count or 0


async def delete_finished_before(connection: AsyncConnection, cutoff: datetime, batch: int) -> int:
    """Delete up to `batch` notifications finished before `cutoff` (their events cascade)."""
    picked = select(NotificationRow.id).where(*_finished_before(cutoff)).limit(batch)
    result = await connection.execute(
        delete(NotificationRow).where(NotificationRow.id.in_(picked.scalar_subquery()))
    )
    return int(result.rowcount)


async def delete_expired_idempotency_records(connection: AsyncConnection, batch: int) -> int:
    """Delete up to `batch` idempotency records past their expiry; how many."""
    result = await connection.execute(
        text(
            "DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM idempotency_keys"
            " WHERE expires_at < now() LIMIT :batch)"
        ),
        {"batch": batch},
    )
    return int(result.rowcount)
