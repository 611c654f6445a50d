"""The one writer of notification status changes: accept, claim, finish, cancel, retry, take back.

Deliveries claim and finish in batches (`claim_many`, `finish_many`): one statement for
many attempts, each row with the same conditions and its own event row.

Every change is one statement on `notifications` that also appends its event row (a
data-modifying CTE) and bumps the row's `event_seq`, which numbers its events 1, 2, 3...
Each returns the `StatusEvent`s it wrote; the caller's unit of work publishes them on the event
feed once they are durable (`herald.notifications.unit_of_work`). Nothing else in Herald
issues an UPDATE of a notification's status.

Callers own the transaction: a unit of work's connection (the API, the dashboard, the
reconciler), or an autocommit connection where each statement commits on its own (a
delivery's claim and its outcome, one round trip each).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import msgspec
from sqlalchemy import DateTime, Row, Table, bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.db.base import sql_in, sql_in_found
from herald.db.models import Notification as NotificationRow
from herald.notifications.events import StatusEvent
from herald.notifications.model import NotificationInput
from herald.vocabulary import CANCELLABLE, WAITING, Status

_NOTIFICATIONS = cast(Table, NotificationRow.__table__)
# Rows come back as the table's columns, `metadata` named as the ORM attribute, so that
# `store.to_domain` reads rows of any query alike.
RETURNED = [c.label("metadata_") if c.name == "metadata" else c for c in _NOTIFICATIONS.c]

# What each transition returns about the rows it moved: enough for the event feed and for
# the next attempt's job (`delivery_job` reads id, channel, priority, attempts, next_attempt_at).
_MOVED = "id, api_key_id, channel, priority, status, attempts, next_attempt_at, event_seq"
_EVENT_OF_MOVED = """
        INSERT INTO notification_events
               (notification_id, status, attempt, detail, sequence, created_at)
        SELECT id, status, attempts, {detail}, event_seq, now() FROM moved
        RETURNING notification_id, detail, created_at
"""
# Each moved row with its event's detail and time, as written.
_MOVED_WITH_EVENT = """
    SELECT moved.*, event.detail, event.created_at AS event_at
      FROM moved JOIN event ON event.notification_id = moved.id
"""


@dataclass(frozen=True, slots=True)
class Moved:
    """A row a transition moved: what the next attempt's job and the event feed need."""

    id: uuid.UUID
    api_key_id: uuid.UUID
    channel: str
    priority: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    event: StatusEvent


def _moved(row: Row[Any]) -> Moved:
    event = StatusEvent(
        notification_id=str(row.id),
        owner=str(row.api_key_id),
        status=row.status,
        attempt=row.attempts,
        detail=row.detail,
        sequence=row.event_seq,
        at=row.event_at,
    )
    return Moved(
        row.id,
        row.api_key_id,
        row.channel,
        row.priority,
        row.status,
        row.attempts,
        row.next_attempt_at,
        event,
    )


@dataclass(frozen=True, slots=True)
class Origin:
    """What made a notification, when a message did (`herald.messages`)."""

    message_id: uuid.UUID
    recipient_id: str | None = None


def accepted_detail(status: str, send_at: datetime | None) -> str:
    if status == Status.SCHEDULED and send_at is not None:
        return f"accepted; scheduled for {send_at.isoformat()}"
    return "accepted"


async def accept(
    connection: AsyncConnection,
    owner: uuid.UUID,
    items: Sequence[NotificationInput],
    max_attempts: int,
    origins: Sequence[Origin] | None = None,
) -> tuple[list[Row[Any]], list[StatusEvent]]:
    """Insert new notifications of one API key (`queued`, or `scheduled` for a future
    `send_at`) with their first events: one multi-row statement each. `origins`, one per
    item, names the message that made each (`herald.messages`)."""
    return await accept_many(connection, [(owner, item) for item in items], max_attempts, origins)


# New notifications and their first events in one statement (so, over an autocommit
# connection, one round trip and no BEGIN/COMMIT): the rows travel as one JSON array, so the
# statement is the same whatever their number and is prepared once per connection.
_ACCEPT = (
    text(
        f"""
    WITH input AS (
        SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
            id uuid, api_key_id uuid, channel text, recipient text, subject text, body text,
            html text, data jsonb, template jsonb, priority text, send_at timestamptz,
            reference text, metadata jsonb, status text, next_attempt_at timestamptz,
            detail text, message_id uuid, recipient_id text)
    ), created AS (
        INSERT INTO notifications
               (id, api_key_id, channel, recipient, subject, body, html, data, template,
                priority, send_at, reference, metadata, status, attempts, max_attempts,
                next_attempt_at, event_seq, created_at, updated_at, message_id, recipient_id)
        SELECT id, api_key_id, channel, recipient, subject, body, html, data, template,
               priority, send_at, reference, metadata, status, 0, :max_attempts,
               next_attempt_at, 1, :now, :now, message_id, recipient_id
          FROM input
        RETURNING {
            ", ".join(
                f"{c.name} AS metadata_" if c.name == "metadata" else c.name
                for c in _NOTIFICATIONS.c
            )
        }
    ), event AS (
        INSERT INTO notification_events
               (notification_id, status, attempt, detail, sequence, created_at)
        SELECT id, status, 0, detail, 1, :now FROM input
    )
    SELECT * FROM created
    """
    )
    .bindparams(bindparam("now", type_=DateTime(timezone=True)))
    .columns(*RETURNED)
)
_encode_rows = msgspec.json.Encoder().encode


async def accept_many(
    connection: AsyncConnection,
    submissions: Sequence[tuple[uuid.UUID, NotificationInput]],
    max_attempts: int,
    origins: Sequence[Origin] | None = None,
) -> tuple[list[Row[Any]], list[StatusEvent]]:
    """Insert new notifications, each of its own API key (a group commit gathers several
    keys' submissions), with their first events, in one statement. Returns the rows and
    their events, in the order given."""
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for index, (owner, item) in enumerate(submissions):
        origin = origins[index] if origins is not None else None
        scheduled = item.send_at is not None and item.send_at > now
        status = Status.SCHEDULED if scheduled else Status.QUEUED
        rows.append(
            {
                "id": uuid.uuid4(),
                "api_key_id": owner,
                "channel": item.channel,
                "recipient": item.to,
                "subject": item.subject,
                "body": item.body,
                "html": item.html,
                "data": item.data,
                "template": item.template,
                "priority": item.priority,
                "send_at": item.send_at,
                "reference": item.reference,
                "metadata": item.metadata,
                "status": status,
                "next_attempt_at": item.send_at if scheduled else now,
                "detail": accepted_detail(status, item.send_at),
                "message_id": origin.message_id if origin is not None else None,
                "recipient_id": origin.recipient_id if origin is not None else None,
            }
        )
    result = await connection.execute(
        _ACCEPT, {"rows": _encode_rows(rows).decode(), "max_attempts": max_attempts, "now": now}
    )
    by_id = {row.id: row for row in result}
    created = [by_id[r["id"]] for r in rows]
    events = [
        StatusEvent(
            notification_id=str(r["id"]),
            owner=str(r["api_key_id"]),
            status=r["status"],
            attempt=0,
            detail=r["detail"],
            sequence=1,
            at=now,
        )
        for r in rows
    ]
    return created, events


# A claim per (notification, attempt): `-> sending`, attempts + 1, a lease until now + its
# `lease` seconds, by its channel's `provider`, held by the worker process `leased_by`, only
# while the row waits for exactly this attempt and is due (a job may run up to 5 s before its
# row's due time: clock skew between hosts). Many pairs, of any channels, in one statement,
# each with its event row. The rows are found by id alone: the status and due tests are
# written so that no partial index can serve them (`sql_in_found`; `coalesce` keeps
# `ix_notifications_due` off the due test).
_CLAIM_MANY = text(
    f"""
    WITH wanted AS (
        SELECT * FROM unnest(
            CAST(:ids AS uuid[]), CAST(:attempts AS int[]), CAST(:leases AS float8[]),
            CAST(:providers AS text[])
        ) AS w(id, attempt, lease, provider)
    ), moved AS (
        UPDATE notifications n
           SET status = 'sending', attempts = n.attempts + 1, updated_at = now(),
               lease_expires_at = now() + make_interval(secs => wanted.lease),
               provider = wanted.provider, leased_by = :leased_by, event_seq = n.event_seq + 1
          FROM wanted
         WHERE n.id = wanted.id AND n.attempts = wanted.attempt - 1
           AND {sql_in_found("n.status", WAITING)}
           AND coalesce(n.next_attempt_at, '-infinity') <= now() + interval '5 seconds'
        RETURNING {", ".join(f"n.{c.strip()}" for c in _MOVED.split(","))}, n.recipient,
                  n.subject, n.body, n.html, n.data, n.template, n.max_attempts, n.provider
    ), event AS (
        {_EVENT_OF_MOVED.format(detail="'attempt ' || attempts || ' of ' || max_attempts || ' via ' || provider")}
    )
    {_MOVED_WITH_EVENT}
    """  # noqa: E501
)


@dataclass(frozen=True, slots=True)
class Wanted:
    """An attempt a job wants to claim, with its channel's lease (seconds) and provider."""

    notification_id: uuid.UUID
    attempt: int
    lease: float
    provider: str


async def claim_many(
    connection: AsyncConnection, wanted: Sequence[Wanted], leased_by: uuid.UUID | None
) -> dict[tuple[uuid.UUID, int], tuple[Row[Any], Moved]]:
    """Claim many (notification, attempt) pairs in one statement; the claims won, by pair (a
    pair is missing when it is done, cancelled, claimed or not due). A pair given twice is
    claimed once (Postgres updates a row once per statement), so the caller must hand each
    won claim to one job only."""
    rows = await connection.execute(
        _CLAIM_MANY,
        {
            "ids": [w.notification_id for w in wanted],
            "attempts": [w.attempt for w in wanted],
            "leases": [w.lease for w in wanted],
            "providers": [w.provider for w in wanted],
            "leased_by": leased_by,
        },
    )
    return {(row.id, row.attempts): (row, _moved(row)) for row in rows}


@dataclass(frozen=True, slots=True)
class Outcome:
    """One attempt's outcome: `sending -> sent | retrying | failed`, with what changes."""

    notification_id: uuid.UUID
    attempt: int
    status: str
    detail: str
    next_attempt_at: datetime | None = None
    error: str | None = None
    provider_message_id: str | None = None
    sent_at: datetime | None = None


_FINISH_MANY = text(
    f"""
    WITH outcome AS (
        SELECT * FROM unnest(
            CAST(:ids AS uuid[]), CAST(:attempts AS int[]), CAST(:statuses AS text[]),
            CAST(:details AS text[]), CAST(:next_attempt_ats AS timestamptz[]),
            CAST(:errors AS text[]), CAST(:provider_message_ids AS text[]),
            CAST(:sent_ats AS timestamptz[])
        ) AS o(id, attempt, status, detail, next_attempt_at, error, provider_message_id, sent_at)
    ), moved AS (
        UPDATE notifications n
           SET status = o.status, updated_at = now(), lease_expires_at = NULL,
               leased_by = NULL, next_attempt_at = o.next_attempt_at, error = o.error,
               provider_message_id = o.provider_message_id, sent_at = o.sent_at,
               event_seq = n.event_seq + 1
          FROM outcome o
         WHERE n.id = o.id AND {sql_in_found("n.status", (Status.SENDING,))}
           AND n.attempts = o.attempt
        RETURNING {", ".join(f"n.{c.strip()}" for c in _MOVED.split(","))}, o.detail AS outcome
    ), event AS ({_EVENT_OF_MOVED.format(detail="outcome")})
    {_MOVED_WITH_EVENT}
    """
)


async def finish_many(
    connection: AsyncConnection, outcomes: Sequence[Outcome]
) -> dict[tuple[uuid.UUID, int], Moved]:
    """Record many attempts' outcomes in one statement (each attempt at most once), each only
    while its attempt still holds the row (`sending`, that attempt number); the rows moved, by
    (notification, attempt). One missing lost its claim (its lease expired, it was taken back)."""
    rows = await connection.execute(
        _FINISH_MANY,
        {
            "ids": [o.notification_id for o in outcomes],
            "attempts": [o.attempt for o in outcomes],
            "statuses": [o.status for o in outcomes],
            "details": [o.detail for o in outcomes],
            "next_attempt_ats": [o.next_attempt_at for o in outcomes],
            "errors": [o.error for o in outcomes],
            "provider_message_ids": [o.provider_message_id for o in outcomes],
            "sent_ats": [o.sent_at for o in outcomes],
        },
    )
    return {(row.id, row.attempts): _moved(row) for row in rows}


_CANCEL = text(
    f"""
    WITH moved AS (
        UPDATE notifications
           SET status = 'cancelled', updated_at = now(), next_attempt_at = NULL,
               event_seq = event_seq + 1
         WHERE id = :id AND (CAST(:owner AS uuid) IS NULL OR api_key_id = :owner)
           AND {sql_in("status", CANCELLABLE)}
        RETURNING {_MOVED}
    ), event AS ({_EVENT_OF_MOVED.format(detail=":detail")})
    {_MOVED_WITH_EVENT}
    """
)


async def cancel(
    connection: AsyncConnection, notification_id: uuid.UUID, owner: uuid.UUID | None, detail: str
) -> Moved | None:
    """Cancel a notification no provider has yet (of `owner`, or anyone's when None)."""
    row = (
        await connection.execute(_CANCEL, {"id": notification_id, "owner": owner, "detail": detail})
    ).first()
    return None if row is None else _moved(row)


# A fresh budget: as many attempts again as a new notification gets, due now.
_RETRY = f"""
    WITH picked AS ({{picked}}), moved AS (
        UPDATE notifications n
           SET status = 'queued', max_attempts = n.attempts + :budget, next_attempt_at = now(),
               updated_at = now(), lease_expires_at = NULL, error = NULL,
               event_seq = n.event_seq + 1
          FROM picked
         WHERE n.id = picked.id AND n.status = 'failed'
        RETURNING {", ".join(f"n.{c.strip()}" for c in _MOVED.split(","))}
    ), event AS ({_EVENT_OF_MOVED.format(detail=":detail")})
    {_MOVED_WITH_EVENT}
"""
_RETRY_ONE = text(_RETRY.format(picked="SELECT CAST(:id AS uuid) AS id"))
_RETRY_FAILED_IN_QUEUE = text(
    _RETRY.format(
        picked="SELECT id FROM notifications WHERE channel = :queue AND status = 'failed' "
        "ORDER BY updated_at DESC LIMIT :limit FOR UPDATE SKIP LOCKED"
    )
)


async def retry(
    connection: AsyncConnection, notification_id: uuid.UUID, budget: int, detail: str
) -> Moved | None:
    """Queue a failed notification again, due now, with `budget` more attempts."""
    row = (
        await connection.execute(
            _RETRY_ONE, {"id": notification_id, "budget": budget, "detail": detail}
        )
    ).first()
    return None if row is None else _moved(row)


async def retry_failed_in_queue(
    connection: AsyncConnection, queue: str, limit: int, budget: int, detail: str
) -> list[Moved]:
    """Queue again up to `limit` failed notifications of `queue`, most recent failures first."""
    rows = await connection.execute(
        _RETRY_FAILED_IN_QUEUE,
        {"queue": queue, "limit": limit, "budget": budget, "detail": detail},
    )
    return [_moved(row) for row in rows]


_TAKE_BACK_EXPIRED = text(
    f"""
    WITH expired AS (
        SELECT id FROM notifications n
         WHERE status = 'sending'
           AND (lease_expires_at < now()
                OR (:trust_heartbeats AND leased_by IS NOT NULL AND NOT EXISTS (
                        SELECT 1 FROM worker_processes p
                         WHERE p.id = n.leased_by
                           AND p.last_seen > now() - make_interval(secs => :recovery))))
         ORDER BY lease_expires_at
         LIMIT :batch
         FOR UPDATE SKIP LOCKED
    ), moved AS (
        UPDATE notifications n
           SET status = CASE WHEN n.attempts < n.max_attempts THEN 'retrying' ELSE 'failed' END,
               next_attempt_at = CASE WHEN n.attempts < n.max_attempts THEN now() END,
               error = 'attempt ' || n.attempts || ' abandoned: its worker stopped before '
                       || 'recording the outcome ('
                       || CASE WHEN n.lease_expires_at < now() THEN 'lease expired'
                               ELSE 'its process stopped beating' END || ')',
               lease_expires_at = NULL, leased_by = NULL,
               updated_at = now(),
               event_seq = n.event_seq + 1
          FROM expired WHERE n.id = expired.id
        RETURNING {", ".join(f"n.{c.strip()}" for c in _MOVED.split(","))}, n.error
    ), event AS ({
        _EVENT_OF_MOVED.format(
            detail="error || CASE WHEN status = 'retrying' THEN '; retrying now' "
            "ELSE '; no attempts left' END"
        )
    })
    {_MOVED_WITH_EVENT}
    """
)


async def take_back_abandoned(
    connection: AsyncConnection, batch: int, recovery_seconds: float | None
) -> list[Moved]:
    """`sending` rows whose worker died: their lease expired, or (with `recovery_seconds`,
    when heartbeats can be trusted) the process holding them has not beaten for that long.
    The attempt counts, and each becomes `retrying` now, or `failed` when its budget is spent.
    """
    rows = await connection.execute(
        _TAKE_BACK_EXPIRED,
        {
            "batch": batch,
            "trust_heartbeats": recovery_seconds is not None,
            "recovery": recovery_seconds or 0.0,
        },
    )
    return [_moved(row) for row in rows]


_REWRITE_ADDRESSES = text(
    """
    UPDATE notifications SET recipient = :recipient, subject = :subject, body = :body,
                             html = :html, error = :error
     WHERE id = :id
    """
)


async def rewrite_addresses(connection: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Replace the address and content of notifications (a deleted recipient's, masked); the
    status is left alone. Here because every UPDATE of notifications is."""
    await connection.execute(_REWRITE_ADDRESSES, rows)
