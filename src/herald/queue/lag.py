"""HTTP before jobs: event-loop lag, measured continuously, holds the workers back.

The workers share the event loop with the API (REST, GraphQL, gRPC). A `LagGuard` wakes
every `interval` seconds and measures how late it woke: that is the event loop's lag, the
delay every request handler sees too (`herald_event_loop_lag_seconds`). When the lag passes
`LAG_GUARD_SECONDS` while the API is serving (a request started or ended within the last
`_API_ACTIVE_SECONDS`), the guard engages: the workers take no new jobs (running ones carry
on), until the lag falls below half the threshold (hysteresis) or the API goes quiet.

Why these rules, and why this cannot starve deliveries:
- It only engages while requests are served, so a process whose API is idle delivers at full
  speed whatever its lag (the lag is then the workers' own, and only they wait).
- While engaged, each queue still runs one job at a time (a minimum share): deliveries slow
  down, they never stop, and the lag they cause is one job's.
- Holding new jobs removes the cause of the lag when it is the workers' (their CPU time), so
  the guard releases itself; when the API alone is the cause, the minimum share remains.
- A long-lived stream (SSE, WebSocket) counts only when it starts and ends, not while it
  waits for events.

A second, milder stage works on the loop's load rather than its lag: when the process has
used at least `_SATURATED_CPU` of a core over the last half second while the API serves, the
workers keep to `share` of their slots (`API_FIRST_WORKER_SHARE`, e.g. a half), until the
CPU falls under `_UNSATURATED_CPU` or the API goes quiet. Lag stays small on a saturated loop
(its turns take a few milliseconds), but every request waits a turn at each step, and a turn
is long when forty jobs resume in it. Measured (`http_under_load`, bench/README.md): half the
slots took the GET p99 from about 2.2x to about 1.5x the idle one, for a fifth to a third
fewer deliveries while the reads lasted. That is a trade for the operator to choose, so the
share is 1 (off) by default. Deliveries that wait for their provider, not the CPU, leave the
process far from a core, so the stage does not engage for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable

import structlog

from herald import metrics

log = structlog.get_logger()

_API_ACTIVE_SECONDS = 1.0
# The process's CPU, as a share of one core over each half second, at which the second stage
# engages and under which it releases.
_SATURATED_CPU = 0.8
_UNSATURATED_CPU = 0.6
_CPU_WINDOW_SAMPLES = 10
_last_request = float("-inf")


def note_request() -> None:
    """The API is serving: called when a request starts and when it ends."""
    global _last_request
    _last_request = time.monotonic()


def api_active() -> bool:
    return time.monotonic() - _last_request < _API_ACTIVE_SECONDS


class LagGuard:
    """Measure the loop's lag every `interval`; `engaged` while it holds the workers back,
    `saturated` while they keep to `share` of their slots. `threshold` 0 measures only
    (neither stage engages); `share` 1 turns the second stage off."""

    def __init__(self, threshold: float, interval: float = 0.05, share: float = 1.0) -> None:
        self.threshold = threshold
        self.interval = interval
        self.engaged = False
        self.lag = 0.0
        self.share = share
        self.saturated = False
        self._samples = 0
        self._cpu = (time.process_time(), time.monotonic())
        self._on_release: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None

    def on_release(self, callback: Callable[[], None]) -> None:
        """Call `callback` when the guard releases (a worker waiting for a slot wakes)."""
        self._on_release.append(callback)

    def start(self) -> None:
        self._task = asyncio.create_task(self._measure(), name="herald-lag-guard")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._unhold()
        self._release()

    async def _measure(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.interval)
            self.observe(max(loop.time() - started - self.interval, 0.0))
            self._samples += 1
            if self._samples % _CPU_WINDOW_SAMPLES == 0:
                cpu, now = time.process_time(), time.monotonic()
                self.observe_cpu((cpu - self._cpu[0]) / max(now - self._cpu[1], 1e-6))
                self._cpu = (cpu, now)

    def observe_cpu(self, busy: float) -> None:
        """The process used `busy` of a core since the last call: the second stage."""
        if self.threshold <= 0 or self.share >= 1:
            return
        if not self.saturated and busy >= _SATURATED_CPU and api_active():
            self.saturated = True
            metrics.worker_share_engaged.inc()
            metrics.worker_share_held.set(1)
        elif busy < _UNSATURATED_CPU or not api_active():
            self._unhold()

    def observe(self, lag: float) -> None:
        self.lag = lag
        metrics.event_loop_lag.observe(lag)
        if self.threshold <= 0:
            return
        if not self.engaged and lag > self.threshold and api_active():
            self.engaged = True
            metrics.lag_guard_engaged.inc()
            log.info("lag_guard.engaged", lag_ms=round(lag * 1000, 1))
        elif self.engaged and (lag < self.threshold / 2 or not api_active()):
            log.info("lag_guard.released", lag_ms=round(lag * 1000, 1))
            self._release()

    def _release(self) -> None:
        if self.engaged:
            self.engaged = False
            self._wake()

    def _unhold(self) -> None:
        """End the second stage, if it holds the workers: they may take all their slots."""
        if self.saturated:
            self.saturated = False
            metrics.worker_share_held.set(0)
            self._wake()

    def _wake(self) -> None:
        for callback in self._on_release:
            callback()

    def free_slots(self, free: int, running: int) -> int:
        """How many new jobs a worker with `free` slots and `running` jobs may take now."""
        if self.engaged:
            return min(free, 1) if running == 0 else 0
        if not self.saturated:
            return free
        allowed = max(1, math.ceil((free + running) * self.share))
        return max(0, min(free, allowed - running))
