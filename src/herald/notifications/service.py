"""Creating, reading, listing and cancelling notifications. Callers own the transaction.

Every status change writes an event row in the same transaction, so a notification's history
is complete whatever crashes. Enqueueing is separate (`delivery_jobs`): callers enqueue only
after their commit, so a worker never looks for a row that is not there yet.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec
import structlog
from sqlalchemy import Row, and_, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from herald.auth.keys import Principal
from herald.db.base import Base
from herald.db.models import Notification, NotificationEvent
from herald.errors import BadRequest, Conflict, NotFound
from herald.notifications.schemas import EventOut, NotificationIn, NotificationOut
from herald.queue import JobQueue, JobRequest, Priority

log = structlog.get_logger()

CANCELLABLE = ("scheduled", "queued", "retrying")


def deliver_job_name(channel: str) -> str:
    return f"deliver.{channel}"


def deliver_job_id(notification_id: uuid.UUID | str, attempt: int) -> str:
    """One job id per attempt: re-enqueueing an attempt is a no-op, a new one never blocked."""
    return f"deliver:{notification_id}:{attempt}"


class Deliverable(Protocol):
    """What the next attempt's job is made from: a `Notification`, or the few columns a
    delivery's outcome statement returns."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def channel(self) -> str: ...
    @property
    def priority(self) -> str: ...
    @property
    def attempts(self) -> int: ...
    @property
    def next_attempt_at(self) -> datetime | None: ...


def delivery_job(notification: Deliverable) -> JobRequest:
    """The job that makes the notification's next attempt, at its due time."""
    attempt = notification.attempts + 1
    return JobRequest(
        deliver_job_name(notification.channel),
        (str(notification.id), attempt),
        job_id=deliver_job_id(notification.id, attempt),
        defer_until=notification.next_attempt_at,
        priority=Priority(notification.priority),
    )


async def enqueue_deliveries(jobs: JobQueue, notifications: Sequence[Deliverable]) -> None:
    """Enqueue the next attempt of each committed notification, in one round trip.

    Never raises: if Redis is unreachable the rows are committed all the same, and the
    reconciler enqueues them once it is back, so the caller's answer does not change.
    """
    if not notifications:
        return
    try:
        await jobs.enqueue_many([delivery_job(n) for n in notifications])
    except Exception as exc:
        log.warning(
            "notifications.enqueue_failed",
            count=len(notifications),
            error=f"{type(exc).__name__}: {exc}",
        )


# Rows come back as the table's columns, `metadata` named as the ORM attribute, so that
# `to_out` reads ORM objects and rows alike.
_NOTIFICATIONS = Base.metadata.tables["notifications"]
_EVENTS_TABLE = Base.metadata.tables["notification_events"]
_LISTED = [c.label("metadata_") if c.name == "metadata" else c for c in _NOTIFICATIONS.c]
_INSERT = insert(_NOTIFICATIONS)


async def create_notifications(
    session: AsyncSession, principal: Principal, items: list[NotificationIn], max_attempts: int
) -> list[Row[Any]]:
    """Insert the notifications and their first events, each in one statement.

    Core inserts, not ORM objects: a submission needs the rows back, not objects tracked by
    the session, and the ORM's bulk path was a third of a single POST's CPU.
    """
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for item in items:
        scheduled = item.send_at is not None and item.send_at > now
        rows.append(
            {
                "id": uuid.uuid4(),
                "api_key_id": principal.id,
                "channel": item.channel,
                "recipient": item.to,
                "subject": item.subject,
                "body": item.body,
                "html": item.html,
                "data": item.data,
                "template": msgspec.to_builtins(item.template) if item.template else None,
                "priority": item.priority,
                "send_at": item.send_at,
                "reference": item.reference,
                "metadata": item.metadata,
                "status": "scheduled" if scheduled else "queued",
                "attempts": 0,
                "max_attempts": max_attempts,
                "next_attempt_at": item.send_at if scheduled else now,
                "created_at": now,
                "updated_at": now,
            }
        )
    created = list(
        await session.execute(_INSERT.returning(*_LISTED, sort_by_parameter_order=True), rows)
    )
    await session.execute(
        insert(_EVENTS_TABLE),
        [
            {
                "notification_id": n.id,
                "status": n.status,
                "attempt": 0,
                "detail": accepted_detail(n),
                "created_at": now,
            }
            for n in created
        ],
    )
    return created


def accepted_detail(notification: Notification | Row[Any]) -> str:
    if notification.status == "scheduled" and notification.send_at is not None:
        return f"accepted; scheduled for {notification.send_at.isoformat()}"
    return "accepted"


# Reading one notification is the API's hottest path (clients poll it), so it is one round
# trip and no ORM objects: the row, and its history as one JSON array that msgspec decodes
# straight into `EventOut`. Connections run in UTC (`herald.db.engine`), so the events' times
# read back exactly as the row's own.
_READ = text(
    """
    SELECT n.id, n.channel, n.recipient, n.status, n.priority, n.attempts, n.max_attempts,
           n.created_at, n.updated_at, n.subject, n.body, n.html, n.data, n.template,
           n.send_at, n.reference, n.metadata AS metadata_, n.next_attempt_at, n.provider,
           n.provider_message_id, n.error, n.sent_at,
           (SELECT coalesce(json_agg(json_build_object('status', e.status, 'at', e.created_at,
                                                       'attempt', e.attempt, 'detail', e.detail)
                                     ORDER BY e.id), '[]')::text
              FROM notification_events e
             WHERE e.notification_id = n.id) AS events
      FROM notifications n
     WHERE n.id = :id AND n.api_key_id = :api_key_id
    """
)
_EVENTS = msgspec.json.Decoder(list[EventOut])


async def read_notification(
    connection: AsyncConnection, principal: Principal, notification_id: uuid.UUID
) -> NotificationOut:
    """The API view of one notification of `principal`, with every event; NotFound if none."""
    row = (
        await connection.execute(_READ, {"id": notification_id, "api_key_id": principal.id})
    ).first()
    if row is None:
        raise NotFound(f"no notification {notification_id}")
    return to_out(row, events=_EVENTS.decode(row.events))


def _encode_cursor(notification: Row[Any]) -> str:
    raw = f"{notification.created_at.isoformat()}|{notification.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, ident = raw.partition("|")
        return datetime.fromisoformat(created), uuid.UUID(ident)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(
            "cursor is not one this API returned", errors=[{"field": "cursor"}]
        ) from None


async def list_notifications(
    connection: AsyncConnection,
    principal: Principal,
    *,
    status: str | None,
    channel: str | None,
    reference: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Row[Any]], str | None]:
    """Newest first; the cursor is the last row's (created_at, id), so inserts never shift it."""
    query = select(*_LISTED).where(Notification.api_key_id == principal.id)
    if status:
        query = query.where(Notification.status == status)
    if channel:
        query = query.where(Notification.channel == channel)
    if reference:
        query = query.where(Notification.reference == reference)
    if cursor:
        created, ident = _decode_cursor(cursor)
        query = query.where(
            or_(
                Notification.created_at < created,
                and_(Notification.created_at == created, Notification.id < ident),
            )
        )
    query = query.order_by(Notification.created_at.desc(), Notification.id.desc())
    rows = list((await connection.execute(query.limit(limit + 1))).all())
    next_cursor = _encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def cancel_notification(
    session: AsyncSession, principal: Principal, notification_id: uuid.UUID
) -> NotificationOut:
    """Cancel a notification not yet handed to a provider; Conflict once it has been."""
    now = datetime.now(UTC)
    cancelled = await session.scalar(
        update(Notification)
        .where(
            Notification.id == notification_id,
            Notification.api_key_id == principal.id,
            Notification.status.in_(CANCELLABLE),
        )
        .values(status="cancelled", updated_at=now, next_attempt_at=None)
        .returning(Notification)
    )
    if cancelled is None:
        current = await session.scalar(
            select(Notification.status).where(
                Notification.id == notification_id, Notification.api_key_id == principal.id
            )
        )
        if current is None:
            raise NotFound(f"no notification {notification_id}")
        raise Conflict(
            f"notification {notification_id} is {current}; it can no longer be cancelled"
        )
    session.add(
        NotificationEvent(
            notification_id=cancelled.id,
            status="cancelled",
            attempt=cancelled.attempts,
            detail="cancelled by the client",
            created_at=now,
        )
    )
    await session.flush()
    return await read_notification(await session.connection(), principal, notification_id)


def accepted_events(notification: Notification | Row[Any]) -> list[EventOut]:
    """The history of a notification just stored: its first event, without reading it back."""
    return [
        EventOut(
            status=notification.status,  # type: ignore[arg-type]
            at=notification.created_at,
            attempt=0,
            detail=accepted_detail(notification),
        )
    ]


def to_out(
    notification: Notification | Row[Any], *, events: list[EventOut] | None = None
) -> NotificationOut:
    """The API view of a stored notification (an ORM object, or a row of its columns with
    `metadata` labelled `metadata_`), with `events` as its history if given."""
    return NotificationOut(
        id=notification.id,
        channel=notification.channel,  # type: ignore[arg-type]
        to=notification.recipient,
        status=notification.status,  # type: ignore[arg-type]
        priority=notification.priority,  # type: ignore[arg-type]
        attempts=notification.attempts,
        max_attempts=notification.max_attempts,
        created_at=notification.created_at,
        updated_at=notification.updated_at,
        subject=notification.subject,
        body=notification.body,
        html=notification.html,
        data=notification.data,
        template=notification.template,
        send_at=notification.send_at,
        reference=notification.reference,
        metadata=notification.metadata_,
        next_attempt_at=notification.next_attempt_at,
        provider=notification.provider,
        provider_message_id=notification.provider_message_id,
        error=notification.error,
        sent_at=notification.sent_at,
        events=events,
    )
