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

import structlog
from sqlalchemy import func, select

from herald import metrics
from herald.notifications import store, transitions
from herald.queue import WorkerRuntime
from herald.resources import Resources
from herald.vocabulary import Status

log = structlog.get_logger()

# "herald reconciler", an arbitrary constant every replica shares.
_LOCK_KEY = 0x48524C44_52434E43 & 0x7FFFFFFFFFFFFFFF
# Bounds one pass, so a huge backlog is worked through over several passes.
_BATCH = 2000


async def reconcile_once(resources: Resources) -> dict[str, int] | None:
    """One pass; None when another replica holds the lock. Returns what was recovered."""
    settings = resources.settings
    async with resources.worker_unit_of_work(transactional=True) as uow:
        connection = uow.connection
        locked = await connection.scalar(select(func.pg_try_advisory_xact_lock(_LOCK_KEY)))
        if not locked:
            return None
        expired = await transitions.take_back_expired(connection, _BATCH)
        for moved in expired:
            log.warning("reconciler.lease_expired", notification_id=str(moved.id), now=moved.status)
        retrying = [m for m in expired if m.status == Status.RETRYING]
        overdue = await store.overdue(connection, settings.reconcile_grace_seconds, _BATCH)
        uow.publish([m.event for m in expired])
        uow.deliver([*retrying, *overdue])
        reasons = ["lease_expired"] * len(retrying) + [
            "scheduled" if n.status == Status.SCHEDULED else "lost" for n in overdue
        ]
    metrics.reconciler_runs.inc()

    recovered = {"lease_expired": 0, "lost": 0, "scheduled": 0}
    for reason, was_created in zip(reasons, uow.enqueued, strict=False):
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
