"""The dashboard's reads: counts per queue, the last hour, lists and one notification.

Nothing here is scoped to an API key: the dashboard user sees every notification. Only
reads: the dashboard's actions are use cases (`herald.notifications.use_cases`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    and_,
    func,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from herald.db.models import Notification
from herald.errors import InvalidInput, NotFound
from herald.notifications import store
from herald.vocabulary import CHANNELS, STATUSES, WAITING

QUEUES = CHANNELS


@dataclass(frozen=True, slots=True)
class QueueCounts:
    due: int = 0
    scheduled: int = 0
    in_progress: int = 0
    sent: int = 0
    failed: int = 0
    cancelled: int = 0


async def queue_counts(session: AsyncSession) -> dict[str, QueueCounts]:
    """Counts per queue: one grouped count (an index-only scan of
    `ix_notifications_status_created`) and the due ones from the partial `ix_notifications_due`.

    Due is queued or retrying and due now; scheduled is anything waiting for a later time (a
    `send_at` in the future, or a retry's backoff).
    """
    by_status = {
        (channel, status): count
        for channel, status, count in (
            await session.execute(
                select(Notification.channel, Notification.status, func.count()).group_by(
                    Notification.channel, Notification.status
                )
            )
        ).all()
    }
    due_rows = await session.execute(
        select(Notification.channel, func.count())
        .where(
            Notification.status.in_(("queued", "retrying")),
            Notification.next_attempt_at <= func.now(),
        )
        .group_by(Notification.channel)
    )
    due: dict[str, int] = dict(due_rows.all())
    counts: dict[str, QueueCounts] = {}
    for queue in QUEUES:

        def n(*statuses: str, queue: str = queue) -> int:
            return sum(by_status.get((queue, status), 0) for status in statuses)

        waiting = n(*WAITING)
        due_now = due.get(queue, 0)
        counts[queue] = QueueCounts(
            due=due_now,
            scheduled=waiting - due_now,
            in_progress=n("sending"),
            sent=n("sent", "delivered"),
            failed=n("failed"),
            cancelled=n("cancelled"),
        )
    return counts


async def throughput(
    session: AsyncSession, since: datetime
) -> dict[str, dict[datetime, tuple[int, int]]]:
    """Sent and failed per queue and minute since `since` (minutes with neither are absent).

    Reads the finished rows changed since then through the partial `ix_notifications_finished`
    (updated_at): a sent row's `sent_at` is never after its `updated_at`.
    """
    failed = Notification.status == "failed"
    minute = func.date_trunc("minute", func.coalesce(Notification.sent_at, Notification.updated_at))
    rows = await session.execute(
        select(
            Notification.channel,
            minute,
            func.count().filter(~failed),
            func.count().filter(failed),
        )
        .where(
            Notification.status.in_(("sent", "delivered", "failed")),
            Notification.updated_at >= since,
            or_(failed, Notification.sent_at >= since),
        )
        .group_by(Notification.channel, minute)
    )
    result: dict[str, dict[datetime, tuple[int, int]]] = {queue: {} for queue in QUEUES}
    for channel, at, sent, failures in rows:
        result.setdefault(channel, {})[at] = (sent, failures)
    return result


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Notification]
    next_cursor: str | None


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        return store.decode_cursor(cursor)
    except InvalidInput:
        raise InvalidInput("That page link is not valid; start from the first page.") from None


async def list_notifications(
    session: AsyncSession,
    *,
    queue: str | None = None,
    status: str | None = None,
    search: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """Newest first, paged by (created_at, id); `search` matches an id, a reference or exactly
    a recipient.

    Without a search, the page is the newest `limit` of each (queue, status) pair, each read
    from `ix_notifications_status_created`, merged: 32 short index scans (about 2 ms at
    100 000 rows) instead of sorting every row of a queue (over 100 ms).
    """
    after: list[ColumnElement[bool]] = []
    if cursor:
        created, ident = decode_cursor(cursor)
        after = [
            Notification.created_at <= created,  # sargable: bounds the index scan
            or_(
                Notification.created_at < created,
                and_(Notification.created_at == created, Notification.id < ident),
            ),
        ]
    newest = (Notification.created_at.desc(), Notification.id.desc())
    if search:
        query = select(Notification).where(*after)
        try:
            query = query.where(Notification.id == uuid.UUID(search))
        except ValueError:
            query = query.where(
                or_(Notification.reference == search, Notification.recipient == search)
            )
        if queue:
            query = query.where(Notification.channel == queue)
        if status:
            query = query.where(Notification.status == status)
    else:
        pairs = [
            select(Notification.id, Notification.created_at)
            .where(Notification.channel == channel, Notification.status == state, *after)
            .order_by(*newest)
            .limit(limit + 1)
            for channel in ([queue] if queue else QUEUES)
            for state in ([status] if status else STATUSES)
        ]
        merged = union_all(*pairs).subquery()
        newest_ids = (
            select(merged.c.id)
            .order_by(merged.c.created_at.desc(), merged.c.id.desc())
            .limit(limit + 1)
        )
        query = select(Notification).where(Notification.id.in_(newest_ids))
    rows = list((await session.scalars(query.order_by(*newest).limit(limit + 1))).all())
    last = rows[limit - 1] if len(rows) > limit else None
    next_cursor = store.encode_cursor(last.created_at, last.id) if last is not None else None
    return Page(rows[:limit], next_cursor)


async def get_notification(session: AsyncSession, notification_id: uuid.UUID) -> Notification:
    notification = await session.scalar(
        select(Notification)
        .where(Notification.id == notification_id)
        .options(selectinload(Notification.events))
        .execution_options(populate_existing=True)
    )
    if notification is None:
        raise NotFound(f"no notification {notification_id}")
    return notification


async def count_failed(session: AsyncSession, queue: str) -> int:
    count = await session.scalar(
        select(func.count()).where(Notification.channel == queue, Notification.status == "failed")
    )
    return count or 0


def history_cutoff(days: int) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


async def count_history(session: AsyncSession, cutoff: datetime) -> int:
    return await store.count_finished_before(await session.connection(), cutoff)
