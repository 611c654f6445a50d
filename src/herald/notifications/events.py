"""The status-event feed: every durable status change, published on Redis pub/sub.

A feed, not the truth (the `notification_events` table is): publishing never delays or fails
the change that caused it. Events go into a bounded buffer that one background task flushes
to Redis in pipelined batches; when Redis is away or the buffer is full they are dropped and
counted (`herald_status_events_dropped_total`). Each event carries its per-notification
`sequence` (1, 2, 3...), so a subscriber that sees a gap knows it missed one and re-reads.

Events of one API key go to `herald:events:<api key id>`, so a subscriber only ever receives
its own; operators subscribe to the pattern.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from herald import metrics

log = structlog.get_logger()

CHANNEL_PREFIX = "herald:events:"
BUFFER_LIMIT = 10_000
_BATCH = 500


class StatusEvent(msgspec.Struct, frozen=True):
    """One status change of one notification, as written to its event row."""

    notification_id: str
    owner: str
    status: str
    attempt: int
    detail: str | None
    sequence: int
    at: datetime


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(StatusEvent).decode


def channel_of(owner: str) -> str:
    return CHANNEL_PREFIX + owner


class EventFeed:
    """Publishes status events in the background; `start()` in the lifespan, `stop()` after."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._buffer: list[StatusEvent] = []
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="herald-event-feed")

    async def stop(self) -> None:
        """Flush what is buffered (best effort), then stop.

        The task is asked to finish, not cancelled: cancelling a task created inside the
        lifespan (which Litestar runs in an anyio task group) left the lifespan's own teardown
        cancelled and hanging. Redis calls are bounded by the client's socket timeout.
        """
        if self._task is None:
            return
        self._stopping = True
        self._ready.set()
        await self._task
        self._task = None

    def publish(self, events: Sequence[StatusEvent]) -> None:
        """Queue events for publishing; never blocks, never raises."""
        if not events:
            return
        room = BUFFER_LIMIT - len(self._buffer)
        if room < len(events):
            metrics.status_events_dropped.inc(len(events) - max(room, 0))
            events = events[: max(room, 0)]
        self._buffer.extend(events)
        self._ready.set()

    async def _run(self) -> None:
        while not self._stopping:
            await self._ready.wait()
            self._ready.clear()
            try:
                await self._flush()
            except Exception as exc:  # Redis away: drop this batch, keep the feed alive
                log.warning("events.publish_failed", error=f"{type(exc).__name__}: {exc}")
                if not self._stopping:
                    await asyncio.sleep(0.5)

    async def _flush(self) -> None:
        while self._buffer:
            batch, self._buffer = self._buffer[:_BATCH], self._buffer[_BATCH:]
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for event in batch:
                        pipe.publish(channel_of(event.owner), _encode(event))
                    await pipe.execute()
            except BaseException:
                metrics.status_events_dropped.inc(len(batch))
                raise
            metrics.status_events_published.inc(len(batch))


async def subscribe(
    redis: Redis, owner: str | None, *, ready: asyncio.Event | None = None
) -> AsyncIterator[StatusEvent]:
    """Status events as they are published: of `owner`, or of every owner when None.

    Survives a Redis restart: the subscription is made again, with a short backoff; events
    published meanwhile are missed (a subscriber sees the gap in `sequence`). `ready` is set
    once the (first) subscription is in place, so a caller can read a snapshot after it
    without missing what happens in between.
    """
    delay = 0.1
    while True:
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        try:
            if owner is None:
                await pubsub.psubscribe(CHANNEL_PREFIX + "*")
            else:
                await pubsub.subscribe(channel_of(owner))
            if ready is not None:
                ready.set()
            delay = 0.1
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message["type"] in ("message", "pmessage"):
                    yield _decode(message["data"])
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            log.info("events.resubscribing", error=f"{type(exc).__name__}: {exc}")
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)
