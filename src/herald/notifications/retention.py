"""Retention: old history is deleted in small batches, by one replica at a time.

Every `RETENTION_INTERVAL_SECONDS` a worker process deletes notifications finished (sent,
delivered, failed, cancelled) more than `RETENTION_DAYS` ago, with their events (the foreign
key cascades), then messages (`POST /v1/messages`) older than that none of whose
notifications is left, and idempotency records past their expiry. Each batch is its own short
transaction holding a transaction-scoped advisory lock, so no lock is held for long, a
replica that finds the lock taken skips its pass, and the API and the deliveries never wait
behind a long delete. A pass stops after `MAX_BATCHES` and carries on at the next one, so a
backlog after turning retention on is worked through steadily. `RETENTION_DAYS=0` keeps
everything. Unfinished notifications are never deleted, however old.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import func, select

from herald import metrics
from herald.messages import store as messages_store
from herald.notifications import store
from herald.queue import WorkerRuntime
from herald.resources import Resources

log = structlog.get_logger()

# "herald retention", an arbitrary constant every replica shares.
_LOCK_KEY = 0x48524C44_5245544E & 0x7FFFFFFFFFFFFFFF
BATCH = 1000
MAX_BATCHES = 50


async def retain_once(resources: Resources) -> dict[str, int] | None:
    """One pass; None when another replica holds the lock. Returns what was deleted."""
    days = resources.settings.retention_days
    cutoff = datetime.now(UTC) - timedelta(days=days)
    deleted = {"notifications": 0, "messages": 0, "idempotency_keys": 0}
    for _ in range(MAX_BATCHES):
        async with resources.worker_engine.begin() as connection:
            if not await connection.scalar(select(func.pg_try_advisory_xact_lock(_LOCK_KEY))):
                return None if not any(deleted.values()) else deleted
            notifications = (
                await store.delete_finished_before(connection, cutoff, BATCH) if days else 0
            )
            messages = (
                await messages_store.delete_empty_before(connection, cutoff, BATCH) if days else 0
            )
            keys = await store.delete_expired_idempotency_records(connection, BATCH)
        deleted["notifications"] += notifications
        deleted["messages"] += messages
        deleted["idempotency_keys"] += keys
        metrics.retention_deleted.labels("notifications").inc(notifications)
        metrics.retention_deleted.labels("messages").inc(messages)
        metrics.retention_deleted.labels("idempotency_keys").inc(keys)
        if notifications < BATCH and messages < BATCH and keys < BATCH:
            break
    if any(deleted.values()):
        log.info("retention.deleted", older_than_days=days, **deleted)
    return deleted


def install_retention(runtime: WorkerRuntime, resources: Resources) -> None:
    """Run retention every `RETENTION_INTERVAL_SECONDS` in this worker process."""
    runtime.add_periodic(
        "retention",
        resources.settings.retention_interval_seconds,
        lambda: retain_once(resources),
    )
