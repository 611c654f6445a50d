"""One unit of work: commit at the boundary, then enqueue the jobs and publish the events.

Written once, used by every use case (the API's, the dashboard's), the reconciler and the
delivery job. Work inside the block runs on one connection; leaving it commits (or rolls back
on an error). Only after the commit are the delivery jobs enqueued, so a worker never looks
for a row that is not there yet, and the status events published, so the feed never reports
a change that did not happen. Neither step can fail the work: if Redis is unreachable the
rows are committed all the same, the reconciler enqueues them once it is back, and the events
table keeps the history the feed missed.

Over an autocommit engine each statement commits by itself (a delivery's claim and outcome,
one round trip each); the unit of work then only does the after-commit part.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from herald.notifications.events import EventFeed, StatusEvent
from herald.queue import JobQueue, JobRequest, Priority

log = structlog.get_logger()


class Deliverable(Protocol):
    """What the next attempt's job is made from (a stored row, or a transition's `Moved`)."""

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


def deliver_job_name(channel: str) -> str:
    return f"deliver.{channel}"


def deliver_job_id(notification_id: uuid.UUID | str, attempt: int) -> str:
    """One job id per attempt: re-enqueueing an attempt is a no-op, a new one never blocked."""
    return f"deliver:{notification_id}:{attempt}"


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


class UnitOfWork:
    """`async with UnitOfWork(engine, jobs, feed) as uow:` then `uow.connection`,
    `uow.deliver(rows)` and `uow.publish(events)`; it commits, then enqueues and publishes."""

    def __init__(self, engine: AsyncEngine, jobs: JobQueue, feed: EventFeed) -> None:
        self._engine = engine
        self._jobs = jobs
        self._feed = feed
        self._deliver: list[Deliverable] = []
        self._events: list[StatusEvent] = []
        self._connection: AsyncConnection | None = None
        # After the commit: per delivery handed to `deliver`, whether its job was created.
        self.enqueued: list[bool] = []

    @property
    def connection(self) -> AsyncConnection:
        assert self._connection is not None, "use the unit of work inside `async with`"
        return self._connection

    def deliver(self, notifications: Sequence[Deliverable]) -> None:
        """Enqueue the next attempt of each after the commit."""
        self._deliver.extend(notifications)

    def publish(self, events: Sequence[StatusEvent]) -> None:
        """Publish these status events after the commit."""
        self._events.extend(events)

    async def __aenter__(self) -> Self:
        self._begin = self._engine.begin()
        self._connection = await self._begin.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._begin.__aexit__(exc_type, exc, tb)
        finally:
            self._connection = None
        if exc_type is None:
            await self.after_commit()

    async def after_commit(self) -> None:
        events, self._events = self._events, []
        self._feed.publish(events)
        deliver, self._deliver = self._deliver, []
        self.enqueued = await _enqueue_deliveries(self._jobs, deliver)


async def _enqueue_deliveries(jobs: JobQueue, notifications: Sequence[Deliverable]) -> list[bool]:
    """Enqueue the next attempt of each committed notification, in one round trip; per job,
    whether it was created (a job with its id already there is left alone).

    Never raises: if Redis is unreachable the rows are committed all the same, and the
    reconciler enqueues them once it is back, so the caller's answer does not change.
    """
    if not notifications:
        return []
    try:
        return await jobs.enqueue_many([delivery_job(n) for n in notifications])
    except Exception as exc:
        log.warning(
            "notifications.enqueue_failed",
            count=len(notifications),
            error=f"{type(exc).__name__}: {exc}",
        )
        return []
