"""Load generators shared by the benchmarks."""

from __future__ import annotations

import time

from bench.pacing import Schedule
from bench.systems import System


async def steady_rate(system: System, rate: float, count: int) -> float:
    """Enqueue `count` pick-up jobs at `rate` per second on a fixed schedule.

    Each job carries its enqueue time (`time.time()` just before the call) and its sequence
    number. The schedule is absolute, so a slow call does not shift the ones after it.
    Returns how far behind schedule the worst call started, in seconds.
    """
    schedule = Schedule(rate)
    for n in range(count):
        await schedule.wait(n)
        await system.enqueue("record", time.time(), n)
    return schedule.worst_lag
