"""Reading and writing `messages` rows; their notifications are written by `transitions`.

A message row is written once, in the unit of work that accepts its first notifications;
afterwards only fallback routing changes it (taking the next channel off `pending`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Row, Table, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.db.models import Message as MessageRow
from herald.db.models import Notification as NotificationRow
from herald.messages.model import Deferred, Message, Skipped
from herald.notifications import store as notifications_store
from herald.notifications.model import Notification
from herald.vocabulary import SUCCEEDED, Routing, SkipReason

_MESSAGES = cast(Table, MessageRow.__table__)
_COLUMNS = [c.label("metadata_") if c.name == "metadata" else c for c in _MESSAGES.c]


async def insert_messages(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert message rows (dicts of `messages`' columns, `metadata` as `metadata`)."""
    if rows:
        await connection.execute(insert(_MESSAGES), list(rows))


def from_plan(row: dict[str, Any], notifications: list[Notification]) -> Message:
    """A message just accepted, from the row written (no read back)."""
    return to_domain(SimpleNamespace(**row, metadata_=row["metadata"]), notifications)


def to_domain(row: Any, notifications: list[Notification]) -> Message:
    """A stored message with its notifications, in its channels' order. With fallback
    routing, once one of them was sent the channels still pending were not needed: they are
    reported as skipped."""
    order = {channel: index for index, channel in enumerate(row.channels)}
    notifications = sorted(notifications, key=lambda n: order.get(n.channel, len(order)))
    skipped = [Skipped(s["channel"], s["reason"]) for s in row.skipped]
    pending = [p["channel"] for p in row.pending]
    if row.routing == Routing.FALLBACK and any(n.status in SUCCEEDED for n in notifications):
        skipped += [Skipped(channel, SkipReason.NOT_NEEDED) for channel in pending]
        pending = []
    return Message(
        id=row.id,
        template=row.template_key,
        template_version=row.template_version,
        routing=row.routing,
        channels=list(row.channels),
        notifications=notifications,
        skipped=skipped,
        priority=row.priority,
        created_at=row.created_at,
        recipient=row.recipient_id,
        locale=row.locale,
        pending=pending,
        deferred=Deferred("quiet_hours", row.deferred_until) if row.deferred_until else None,
        send_at=row.send_at,
        reference=row.reference,
        metadata=row.metadata_,
    )


async def read_messages(
    connection: AsyncConnection, owner: uuid.UUID | None, ids: Sequence[uuid.UUID]
) -> list[Message]:
    """The messages with these ids (of `owner`, or anyone's when None), in this order, each
    with its notifications (oldest first, with their events); missing ones are left out."""
    query = select(*_COLUMNS).where(MessageRow.id.in_(list(ids)))
    if owner is not None:
        query = query.where(MessageRow.api_key_id == owner)
    rows = {row.id: row for row in await connection.execute(query)}
    if not rows:
        return []
    links = await connection.execute(
        select(NotificationRow.message_id, NotificationRow.id)
        .where(NotificationRow.message_id.in_(list(rows)))
        .order_by(NotificationRow.created_at, NotificationRow.id)
    )
    by_message: dict[uuid.UUID, list[uuid.UUID]] = {}
    for link in links:
        by_message.setdefault(link.message_id, []).append(link.id)
    every = [n for found in by_message.values() for n in found]
    notifications = {n.id: n for n in await notifications_store.read_many(connection, None, every)}
    return [
        to_domain(rows[i], [notifications[n] for n in by_message.get(i, []) if n in notifications])
        for i in ids
        if i in rows
    ]


async def list_recent(
    connection: AsyncConnection, owner: uuid.UUID | None, limit: int, before: datetime | None
) -> list[Message]:
    """The newest messages (of `owner`, or everyone's), created before `before` if given."""
    query = select(MessageRow.id)
    if owner is not None:
        query = query.where(MessageRow.api_key_id == owner)
    if before is not None:
        query = query.where(MessageRow.created_at < before)
    query = query.order_by(MessageRow.created_at.desc(), MessageRow.id.desc()).limit(limit)
    ids = list((await connection.scalars(query)).all())
    return await read_messages(connection, owner, ids)


# Fallback: the fallback messages of these notifications that still have a channel to try,
# locked. Whether all their notifications failed is asked in a statement of its own, after
# the lock is held: its snapshot then sees what a concurrent fallback committed.
_LOCK_FALLBACKS = text(
    """
    SELECT m.id, m.api_key_id, m.recipient_id, m.pending
      FROM messages m
     WHERE m.id IN (SELECT message_id FROM notifications
                     WHERE id = ANY(:ids) AND message_id IS NOT NULL)
       AND m.routing = 'fallback' AND jsonb_array_length(m.pending) > 0
     ORDER BY m.id
       FOR UPDATE OF m
    """
)
_ALL_FAILED = text(
    """
    SELECT m.id FROM messages m
     WHERE m.id = ANY(:ids)
       AND NOT EXISTS (SELECT 1 FROM notifications n
                        WHERE n.message_id = m.id AND n.status <> 'failed')
    """
)


async def lock_to_fall_back(
    connection: AsyncConnection, notification_ids: Sequence[uuid.UUID]
) -> list[Row[Any]]:
    """The fallback messages of these notifications that must try their next channel now
    (every notification they made failed for good), locked until the caller commits."""
    locked = list(
        (await connection.execute(_LOCK_FALLBACKS, {"ids": list(notification_ids)})).all()
    )
    if not locked:
        return []
    failed = set((await connection.scalars(_ALL_FAILED, {"ids": [row.id for row in locked]})).all())
    return [row for row in locked if row.id in failed]


# The sweep's candidates: fallback messages with a channel left whose notifications all failed
# (walked through the partial index ix_messages_fallback_pending, oldest first). A message
# another transaction holds (the hook falling back) is skipped: it is being dealt with.
_LOCK_LEFT_BEHIND = text(
    """
    SELECT m.id, m.api_key_id, m.recipient_id, m.pending
      FROM messages m
     WHERE m.routing = 'fallback' AND jsonb_array_length(m.pending) > 0
       AND EXISTS (SELECT 1 FROM notifications n WHERE n.message_id = m.id)
       AND NOT EXISTS (SELECT 1 FROM notifications n
                        WHERE n.message_id = m.id AND n.status <> 'failed')
     ORDER BY m.created_at
     LIMIT :batch
       FOR UPDATE OF m SKIP LOCKED
    """
)


async def lock_left_behind(connection: AsyncConnection, batch: int) -> list[Row[Any]]:
    """Up to `batch` fallback messages whose notifications all failed and whose next channel
    was never accepted, locked until the caller commits. "All failed" is asked again after
    the lock, in a statement of its own, as in `lock_to_fall_back`: a fallback committed
    between this statement's snapshot and its lock is then seen."""
    locked = list((await connection.execute(_LOCK_LEFT_BEHIND, {"batch": batch})).all())
    if not locked:
        return []
    failed = set((await connection.scalars(_ALL_FAILED, {"ids": [row.id for row in locked]})).all())
    return [row for row in locked if row.id in failed]


async def take_pending(connection: AsyncConnection, message_id: uuid.UUID) -> None:
    """Drop the first pending channel (its notifications were just accepted)."""
    await connection.execute(
        text("UPDATE messages SET pending = pending - 0, updated_at = now() WHERE id = :id"),
        {"id": message_id},
    )


# Retention: messages older than the cutoff none of whose notifications is left (retention
# deletes a message's notifications first, once they are finished; a message with a
# notification still waiting or being sent is kept, however old).
_DELETE_EMPTY_BEFORE = text(
    """
    DELETE FROM messages WHERE id IN (
        SELECT m.id FROM messages m
         WHERE m.created_at < :cutoff
           AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.message_id = m.id)
         ORDER BY m.created_at
         LIMIT :batch
           FOR UPDATE OF m SKIP LOCKED)
    """
)


async def delete_empty_before(connection: AsyncConnection, cutoff: datetime, batch: int) -> int:
    """Delete up to `batch` messages created before `cutoff` whose notifications are all
    gone; how many."""
    result = await connection.execute(_DELETE_EMPTY_BEFORE, {"cutoff": cutoff, "batch": batch})
    return int(result.rowcount)
