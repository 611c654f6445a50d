"""Group commit for single submissions: the ones that arrive together are written together.

Every interface's single submission (`NotificationUseCases.send_notification`, over REST,
GraphQL and gRPC alike) is validated and its idempotency key claimed by the request itself;
then the request hands its notification to `SubmissionGroups.submit` and waits. One task
writes what is waiting as one group, in one unit of work: one statement inserting the
notifications and their events (`transitions.accept_many`; with keyed members, in one
transaction with their idempotency results), one commit, then one enqueue of all the
delivery jobs and one publish of the events (`herald.notifications.unit_of_work`). Each
request then gets its own notification back.

- **While a commit is in flight, submissions wait for it**, and the next group is everything
  that arrived meanwhile, up to `SUBMISSION_GROUP_LIMIT`.
- **An idle server adds no latency.** When no commit is in flight, the group is written at
  once. It only lingers, up to `SUBMISSION_GROUP_WAIT_MS`, while every turn of the event loop
  brings more submissions; a lone request has nobody to wait for and does not wait.
- **Outages answer every member.** If Postgres is away the transaction rolls back as a whole:
  nothing of the group is stored and every member gets the error (a 503 in every interface);
  the request then releases its idempotency key, as a failed request always does. Redis away
  fails nobody: the rows are committed and the reconciler enqueues them later.
- **A bad neighbour fails only itself.** Any other error of a group (a bug, a value Postgres
  refuses) is retried member by member, each in its own transaction, so that each request
  gets the answer it would have had alone.
- A request cancelled while it waits (a gRPC deadline, say) leaves the group if its commit has
  not started; otherwise it waits for that commit to end, so that the key it claimed is
  released only if its notification was not stored.

`herald_submission_group_size` counts the groups and their sizes.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import Row

from herald import metrics
from herald.errors import is_outage
from herald.notifications import idempotency, transitions
from herald.notifications.events import StatusEvent
from herald.notifications.model import NotificationInput
from herald.notifications.unit_of_work import UnitOfWork

log = structlog.get_logger()

Accepted = tuple[Row[Any], StatusEvent]


@dataclass(eq=False, slots=True)
class _Waiting:
    owner: uuid.UUID
    item: NotificationInput
    key: idempotency.Key | None
    done: asyncio.Future[Accepted]
    taken: bool = field(default=False)


class SubmissionGroups:
    """Writes waiting single submissions in groups, one group at a time (see the module)."""

    def __init__(
        self,
        unit_of_work: Callable[[bool], UnitOfWork],
        *,
        max_attempts: int,
        limit: int,
        wait_seconds: float,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._max_attempts = max_attempts
        self._limit = limit
        self._wait = wait_seconds
        self._waiting: deque[_Waiting] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def waiting(self) -> int:
        """Submissions waiting for a group (not counting those in the commit in flight)."""
        return len(self._waiting)

    async def submit(
        self, owner: uuid.UUID, item: NotificationInput, key: idempotency.Key | None
    ) -> Accepted:
        """Store one validated notification with the next group; its row and first event."""
        if self._task is None or self._task.done():  # not started, or cancelled
            self.start()
        entry = _Waiting(owner, item, key, asyncio.get_running_loop().create_future())
        self._waiting.append(entry)
        self._wake.set()
        try:
            return await asyncio.shield(entry.done)
        except asyncio.CancelledError:
            if not entry.taken:
                self._waiting.remove(entry)
            else:  # its commit is in flight: the caller's clean-up must know how it ended
                with contextlib.suppress(BaseException):
                    await entry.done
            raise

    def start(self) -> None:
        """Start the writer task in the running loop (the lifespan does; else the first
        submission). Its context is a fresh one: it belongs to no request."""
        self._stopping = False
        self._task = asyncio.create_task(
            self._run(), name="herald-submission-groups", context=contextvars.Context()
        )

    async def stop(self) -> None:
        """Write what is waiting, then end the task (in the lifespan, after the API stopped)."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            if not self._waiting:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._linger()
            group: list[_Waiting] = []
            while self._waiting and len(group) < self._limit:
                entry = self._waiting.popleft()
                entry.taken = True
                group.append(entry)
            await self._commit(group)

    async def _linger(self) -> None:
        """Let the submissions already on their way join, while each turn of the loop brings
        more, for at most the bound: no turn brings any when the server is idle."""
        if self._wait <= 0:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        while len(self._waiting) < self._limit and loop.time() < deadline:
            seen = len(self._waiting)
            await asyncio.sleep(0)
            if len(self._waiting) == seen:
                return

    async def _commit(self, group: list[_Waiting]) -> None:
        metrics.submission_group_size.observe(len(group))
        try:
            # Without keys the group is one statement, committed by itself (no BEGIN, COMMIT);
            # keys' results are recorded in the same transaction as the rows they name.
            keyed = any(e.key is not None for e in group)
            async with self._unit_of_work(keyed) as uow:
                rows, events = await transitions.accept_many(
                    uow.connection, [(e.owner, e.item) for e in group], self._max_attempts
                )
                await idempotency.record_results(
                    uow.connection,
                    [(e.key, [row.id]) for e, row in zip(group, rows, strict=True) if e.key],
                )
                uow.deliver(rows)
                uow.publish(events)
        except Exception as exc:
            if len(group) > 1 and not is_outage(exc):
                log.warning(
                    "submissions.group_failed",
                    size=len(group),
                    error=f"{type(exc).__name__}: {exc}",
                )
                for entry in group:
                    await self._commit([entry])
                return
            for entry in group:
                if not entry.done.done():
                    entry.done.set_exception(exc)
            return
        except BaseException:
            for entry in group:
                if not entry.done.done():
                    entry.done.cancel()
            raise
        for entry, row, event in zip(group, rows, events, strict=True):
            if not entry.done.done():
                entry.done.set_result((row, event))
