"""The overview: every queue's counts, last hour, pause state and consumers, shared by all tabs.

`OverviewCache` computes it at most once per refresh interval per process: however many tabs
poll, one of them runs the queries and the others wait for (or reuse) its result.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herald.dashboard.queries import QUEUES, QueueCounts, queue_counts, throughput
from herald.queue.control import ProcessInfo, live_processes, paused_queues

log = structlog.get_logger()

CHART_MINUTES = 60
CHART_WIDTH = 300
CHART_HEIGHT = 48
_BAR = CHART_WIDTH / CHART_MINUTES


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    sent_y: float
    sent_height: float
    failed_y: float
    failed_height: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    """Per-minute bars (sent below, failed stacked on top), scaled to the busiest minute."""

    bars: list[Bar]
    sent: int
    failed: int
    peak: int
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT


def make_chart(per_minute: dict[datetime, tuple[int, int]], start: datetime) -> Chart:
    minutes = [start + timedelta(minutes=i) for i in range(CHART_MINUTES)]
    values = [per_minute.get(minute, (0, 0)) for minute in minutes]
    peak = max((sent + failed for sent, failed in values), default=0)
    scale = CHART_HEIGHT / peak if peak else 0.0
    bars: list[Bar] = []
    for i, (minute, (sent, failed)) in enumerate(zip(minutes, values, strict=True)):
        if not sent and not failed:
            continue
        sent_height = sent * scale
        failed_height = failed * scale
        bars.append(
            Bar(
                x=round(i * _BAR, 2),
                width=round(_BAR - 1, 2),
                sent_y=round(CHART_HEIGHT - sent_height, 2),
                sent_height=round(sent_height, 2),
                failed_y=round(CHART_HEIGHT - sent_height - failed_height, 2),
                failed_height=round(failed_height, 2),
                label=f"{minute:%H:%M} UTC: {sent} sent, {failed} failed",
            )
        )
    sent_total = sum(sent for sent, _ in values)
    failed_total = sum(failed for _, failed in values)
    return Chart(bars, sent_total, failed_total, peak)


@dataclass(frozen=True, slots=True)
class QueueOverview:
    name: str
    counts: QueueCounts
    chart: Chart
    paused: bool
    processes: list[ProcessInfo]


@dataclass(frozen=True, slots=True)
class Overview:
    queues: list[QueueOverview]
    at: datetime
    # False when Redis could not be read: the consumers are unknown, not absent.
    processes_known: bool = True


async def load_overview(
    session_maker: async_sessionmaker[AsyncSession], redis: Redis, *, now: datetime | None = None
) -> Overview:
    now = now or datetime.now(UTC)
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=CHART_MINUTES - 1)
    async with session_maker() as session:
        counts = await queue_counts(session)
        per_minute = await throughput(session, start)
        paused = await paused_queues(session)
    try:
        processes: list[ProcessInfo] | None = await live_processes(redis)
    except Exception as exc:  # the counts are still worth showing while Redis is down
        log.warning("dashboard.processes_unavailable", error=f"{type(exc).__name__}: {exc}")
        processes = None
    queues = [
        QueueOverview(
            name=queue,
            counts=counts[queue],
            chart=make_chart(per_minute.get(queue, {}), start),
            paused=queue in paused,
            processes=[p for p in processes or [] if queue in p.queues],
        )
        for queue in QUEUES
    ]
    return Overview(queues, now, processes_known=processes is not None)


class OverviewCache:
    """One overview per `ttl` seconds per process, whatever the number of tabs polling."""

    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._lock = asyncio.Lock()
        self._value: Overview | None = None
        self._fresh_until = 0.0
        self.loads = 0

    async def get(self, load: Callable[[], Awaitable[Overview]]) -> Overview:
        if self._value is not None and time.monotonic() < self._fresh_until:
            return self._value
        async with self._lock:
            # Whoever waited on the lock finds the result the first one loaded.
            if self._value is None or time.monotonic() >= self._fresh_until:
                self._value = await load()
                self.loads += 1
                self._fresh_until = time.monotonic() + self._ttl
            return self._value

    def invalidate(self) -> None:
        """After an action, so the next view shows its effect at once."""
        self._fresh_until = 0.0
