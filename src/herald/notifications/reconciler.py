"""The reconciler: Postgres is the truth, so put back in Redis whatever should be there.

Every `RECONCILE_INTERVAL_SECONDS`, one replica at a time (a transaction-scoped Postgres
advisory lock; the others skip the pass):

1. `sending` rows whose lease expired (their worker died mid-delivery) are taken back: the
   attempt counts, and the row becomes `retrying` now, or `failed` if the budget is spent.
2. `queued`, `retrying` and `scheduled` rows due for longer than `RECONCILE_GRACE_SECONDS`
   have their delivery job enqueued again. The job id names the attempt, so if the job is
   still in Redis (a backlog, not a loss) this is a no-op; only lost jobs are re-created.

This is what makes a lost Redis write, a flushed Redis, a crash between commit and enqueue,
or a SIGKILL harmless, without waiting for arq's in-progress expiry.
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from herald import metrics
from herald.db.models import Notification
from herald.notifications.service import delivery_job
from herald.queue import JobRequest, WorkerRuntime
from herald.resources import Resources

log = structlog.get_logger()

# "herald reconciler", an arbitrary constant every replica shares.
_LOCK_KEY = 0x48524C44_52434E43 & 0x7FFFFFFFFFFFFFFF
# Bounds one pass, so a huge backlog is worked through over several passes.
_BATCH = 2000

_TAKE_BACK_EXPIRED = text(
    """
    WITH expired AS (
        SELECT id FROM notifications
         WHERE status = 'sending' AND lease_expires_at < now()
         ORDER BY lease_expires_at
         LIMIT :batch
         FOR UPDATE SKIP LOCKED
    ), moved AS (
        UPDATE notifications n
           SET status = CASE WHEN n.attempts < n.max_attempts THEN 'retrying' ELSE 'failed' END,
               next_attempt_at = CASE WHEN n.attempts < n.max_attempts THEN now() END,
               error = 'attempt ' || n.attempts || ' abandoned: its worker stopped before '
                       || 'recording the outcome (lease expired)',
               lease_expires_at = NULL,
               updated_at = now()
          FROM expired WHERE n.id = expired.id
        RETURNING n.id, n.status, n.attempts, n.error
    ), events AS (
        INSERT INTO notification_events (notification_id, status, attempt, detail, created_at)
        SELECT id, status, attempts,
               error || CASE WHEN status = 'retrying' THEN '; retrying now'
                             ELSE '; no attempts left' END,
               now()
          FROM moved
    )
    SELECT id, status FROM moved
    """
)


async def _take_back_expired(session: AsyncSession) -> list[Notification]:
    moved = (await session.execute(_TAKE_BACK_EXPIRED, {"batch": _BATCH})).all()
    for row in moved:
        log.warning("reconciler.lease_expired", notification_id=str(row.id), now=row.status)
    retry_ids = [row.id for row in moved if row.status == "retrying"]
    if not retry_ids:
        return []
    rows = await session.scalars(select(Notification).where(Notification.id.in_(retry_ids)))
    return list(rows.all())


async def _overdue(session: AsyncSession, grace_seconds: float) -> list[Notification]:
    cutoff = func.now() - timedelta(seconds=grace_seconds)
    rows = await session.scalars(
        select(Notification)
        .where(
            Notification.status.in_(("queued", "retrying", "scheduled")),
            Notification.next_attempt_at < cutoff,
        )
        .order_by(Notification.next_attempt_at)
        .limit(_BATCH)
    )
    return list(rows.all())


async def reconcile_once(resources: Resources) -> dict[str, int] | None:
    """One pass; None when another replica holds the lock. Returns what was recovered."""
    settings = resources.settings
    async with resources.worker_session_maker() as session, session.begin():
        locked = await session.scalar(select(func.pg_try_advisory_xact_lock(_LOCK_KEY)))
        if not locked:
            return None
        expired = await _take_back_expired(session)
        overdue = await _overdue(session, settings.reconcile_grace_seconds)
        await session.execute(
            text(
                "DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM idempotency_keys"
                " WHERE expires_at < now() LIMIT 1000)"
            )
        )
    metrics.reconciler_runs.inc()

    requests: list[tuple[str, JobRequest]] = [("lease_expired", delivery_job(n)) for n in expired]
    requests += [
        ("scheduled" if n.status == "scheduled" else "lost", delivery_job(n)) for n in overdue
    ]
    recovered = {"lease_expired": 0, "lost": 0, "scheduled": 0}
    if requests:
        created = await resources.jobs.enqueue_many([request for _, request in requests])
        for (reason, _), was_created in zip(requests, created, strict=True):
            if was_created:
                recovered[reason] += 1
                metrics.reconciler_recovered.labels(reason).inc()
    if any(recovered.values()):
        log.warning("reconciler.recovered", **recovered)
    return recovered


def install_reconciler(runtime: WorkerRuntime, resources: Resources) -> None:
    """Reconcile every `RECONCILE_INTERVAL_SECONDS` in this worker process."""
    runtime.add_periodic(
        "reconciler",
        resources.settings.reconcile_interval_seconds,
        lambda: reconcile_once(resources),
    )
