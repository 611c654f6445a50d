"""A watch: one caller's status events, filtered, with a bounded backlog.

Every live interface (GraphQL subscriptions, the WebSocket stream, SSE) reads events the same
way: subscribe first, then read the snapshot, then take events as they come, skipping any the
snapshot already held (by per-notification `sequence`). A background task moves events from
Redis into a bounded queue; when a slow consumer lets it fill, newer events are dropped and
counted, and the consumer is told how many (`Dropped`) before the next event, so it can
re-read. The watch ends when the process starts draining, within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType

from herald import metrics
from herald.errors import Unavailable
from herald.notifications.events import StatusEvent, subscribe
from herald.resources import Resources

BACKLOG = 1000
SUBSCRIBE_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Dropped:
    """`count` events were dropped because the consumer fell behind."""

    count: int


class Watch:
    def __init__(
        self,
        resources: Resources,
        owner: str,
        wants: Callable[[StatusEvent], bool] = lambda event: True,
        backlog: int = BACKLOG,
        *,
        interface: str = "websocket",
    ) -> None:
        self._resources = resources
        self._interface = interface
        self._owner = owner
        self._wants = wants
        self._queue: asyncio.Queue[StatusEvent] = asyncio.Queue(maxsize=backlog)
        self._dropped = 0
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.seen: dict[str, int] = {}

    async def __aenter__(self) -> Watch:
        metrics.live_streams_open.labels(self._interface).inc()
        self._task = asyncio.create_task(self._pump(), name="herald-live-watch")
        try:
            await asyncio.wait_for(self._ready.wait(), SUBSCRIBE_TIMEOUT)
        except TimeoutError:
            await self._stop()
            raise Unavailable("the event feed (Redis) is unavailable") from None
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _stop(self) -> None:
        if self._task is not None:
            metrics.live_streams_open.labels(self._interface).dec()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _pump(self) -> None:
        redis = self._resources.redis
        async for event in subscribe(redis, self._owner, ready=self._ready):
            if not self._wants(event):
                continue
            try:
                self._queue.put_nowait(event)
            except asyncio.QueueFull:
                self._dropped += 1
                metrics.live_events_dropped.labels(self._interface).inc()

    def note(self, notification_id: str, sequence: int | None) -> None:
        """Record what the snapshot held, so the events it already covered are skipped."""
        if sequence is not None:
            self.seen[notification_id] = max(self.seen.get(notification_id, 0), sequence)

    @property
    def pending(self) -> int:
        """Events received and not yet taken, counting those dropped."""
        return self._queue.qsize() + self._dropped

    @property
    def stopping(self) -> bool:
        return self._resources.draining

    async def next(self, idle: float) -> StatusEvent | Dropped | None:
        """The next new event, a `Dropped` notice, or None after `idle` seconds."""
        if self._dropped:
            dropped, self._dropped = self._dropped, 0
            return Dropped(dropped)
        deadline = asyncio.get_running_loop().time() + idle
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return None
            try:
                event = await asyncio.wait_for(self._queue.get(), min(left, 1.0))
            except TimeoutError:
                if self.stopping:
                    return None
                continue
            if event.sequence <= self.seen.get(event.notification_id, 0):
                continue
            self.seen[event.notification_id] = event.sequence
            metrics.live_events_sent.labels(self._interface).inc()
            return event

    async def events(self) -> AsyncIterator[StatusEvent | Dropped]:
        """Every new event (and drop notice) until the process drains."""
        while not self.stopping:
            item = await self.next(idle=1.0)
            if item is not None:
                yield item
