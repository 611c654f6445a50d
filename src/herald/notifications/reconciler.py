"""The reconciler: Postgres is the truth, so put back in Redis whatever should be there.

Every `RECONCILE_INTERVAL_SECONDS`, one replica at a time (a transaction-scoped Postgres
advisory lock; the others skip the pass):

1. `sending` rows whose worker died mid-delivery are taken back: their lease expired, or the
   process holding them stopped its heartbeat (`worker_processes`), long before the lease
   (the job timeout plus a margin). The attempt counts, and the row becomes `retrying` now,
   or `failed` if the budget is spent. This step also runs on its own, more often (below).
2. `queued`, `retrying` and `scheduled` rows due for longer than `RECONCILE_GRACE_SECONDS`
   have their delivery job enqueued again. The job id names the attempt, so if the job is
   still in Redis (a backlog, not a loss) this is a no-op; only lost jobs are re-created.
3. Fallback messages whose notifications all failed but whose next channel was never
   accepted (the delivery's fallback hook could not write, or step 1 failed the last attempt)
   fall back now (`herald.messages.fallback.sweep`, up to `_FALLBACK_BATCH` a pass).

This is what makes a lost Redis write, a flushed Redis, a crash between commit and enqueue,
or a SIGKILL harmless, without waiting for arq's in-progress expiry.

**Within `RECOVERY_SECONDS` of a crash** (10 s), a dead process's deliveries are sent again:
a process silent for `DEAD_AFTER` of it (6 s) is dead, and step 1 alone runs every
`LOOK_EVERY` of it (2 s), so they are taken back at most 0.8 of it after the crash; the
rest is for the retry's pick-up and provider call. A live process beats at least every
`RECOVERY_SECONDS` / 5 (`herald.queue.control.beat_seconds`): dead means three beats
missed, so its long jobs are never taken from it.
"""

from __future__ import annotations

import time

import structlog
from sqlalchemy import func, select

from herald import metrics
from herald.messages import fallback
from herald.notifications import store, transitions
from herald.notifications.unit_of_work import UnitOfWork
from herald.queue import WorkerRuntime
from herald.resources import Resources
from herald.vocabulary import Status

log = structlog.get_logger()

# "herald reconciler", an arbitrary constant every replica shares.
_LOCK_KEY = 0x48524C44_52434E43 & 0x7FFFFFFFFFFFFFFF
# Bounds one pass, so a huge backlog is worked through over several passes.
_BATCH = 2000
_FALLBACK_BATCH = 200


# Fractions of RECOVERY_SECONDS: a process silent this long is dead; step 1 runs this often.
DEAD_AFTER = 0.6
LOOK_EVERY = 0.2


async def reconcile_once(resources: Resources) -> dict[str, int] | None:
    """One pass; None when another replica holds the lock. Returns what was recovered."""
    settings = resources.settings
    async with resources.worker_unit_of_work(transactional=True) as uow:
        connection = uow.connection
        if not await _lock(uow):
            return None
        retrying = await _take_back(uow, resources)
        overdue = await store.overdue(connection, settings.reconcile_grace_seconds, _BATCH)
        uow.deliver([*retrying, *overdue])
        reasons = ["lease_expired"] * len(retrying) + [
            "scheduled" if n.status == Status.SCHEDULED else "lost" for n in overdue
        ]
        # After the deliveries above, so `uow.enqueued` still lines up with `reasons`.
        fell_back = await fallback.sweep(uow, settings.max_attempts, _FALLBACK_BATCH)
    metrics.reconciler_runs.inc()

    recovered = {"lease_expired": 0, "lost": 0, "scheduled": 0, "fallback": fell_back}
    for reason, was_created in zip(reasons, uow.enqueued, strict=False):
        if was_created:
            recovered[reason] += 1
            metrics.reconciler_recovered.labels(reason).inc()
    metrics.reconciler_recovered.labels("fallback").inc(fell_back)
    if any(recovered.values()):
        log.warning("reconciler.recovered", **recovered)
    return recovered


async def recover_once(resources: Resources) -> int | None:
    """Step 1 alone (dead processes' and expired leases' deliveries); None when another
    replica holds the lock. Returns how many were sent to be delivered again."""
    async with resources.worker_unit_of_work(transactional=True) as uow:
        if not await _lock(uow):
            return None
        uow.deliver(await _take_back(uow, resources))
    again = sum(1 for was_created in uow.enqueued if was_created)
    if again:
        metrics.reconciler_recovered.labels("lease_expired").inc(again)
        log.warning("reconciler.recovered", lease_expired=again)
    return again


async def _lock(uow: UnitOfWork) -> bool:
    """One replica at a time: the others skip this pass (released at the commit)."""
    return bool(await uow.connection.scalar(select(func.pg_try_advisory_xact_lock(_LOCK_KEY))))


async def _take_back(uow: UnitOfWork, resources: Resources) -> list[transitions.Moved]:
    """Step 1: move the abandoned `sending` rows on and publish their events; returns those
    to deliver again (the caller enqueues them with whatever else it delivers)."""
    expired = await transitions.take_back_abandoned(
        uow.connection, _BATCH, _silence_limit(resources)
    )
    for moved in expired:
        log.warning("reconciler.lease_expired", notification_id=str(moved.id), now=moved.status)
    uow.publish([m.event for m in expired])
    return [m for m in expired if m.status == Status.RETRYING]


def _silence_limit(resources: Resources) -> float | None:
    """How long a process may be silent before it is dead (`DEAD_AFTER` of RECOVERY_SECONDS),
    once this process has itself beaten on time, without a break, for longer than
    RECOVERY_SECONDS and a beat (`WorkerRuntime.beating_since`): after a Postgres outage or
    stall every heartbeat is stale for a moment, and a live process must not look dead. None
    (leases only) until then."""
    runtime = resources.runtime
    recovery = resources.settings.recovery_seconds
    if runtime is None or runtime.beating_since is None:
        return None
    if time.monotonic() - runtime.beating_since < recovery + runtime.beat_every:
        return None
    return recovery * DEAD_AFTER


def install_reconciler(runtime: WorkerRuntime, resources: Resources) -> None:
    """Reconcile every `RECONCILE_INTERVAL_SECONDS` in this worker process, and take back
    dead processes' deliveries every `LOOK_EVERY` of `RECOVERY_SECONDS`."""
    settings = resources.settings
    runtime.add_periodic(
        "reconciler", settings.reconcile_interval_seconds, lambda: reconcile_once(resources)
    )
    runtime.add_periodic(
        "recovery", settings.recovery_seconds * LOOK_EVERY, lambda: recover_once(resources)
    )
