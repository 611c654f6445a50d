"""Load generators shared by the benchmarks."""

from __future__ import annotations

import asyncio
import time

from bench.systems import System


async def steady_rate(system: System, rate: float, count: int) -> float:
    """Enqueue `count` pick-up jobs at `rate` per second on a fixed schedule.

    Each job carries its enqueue time (`time.time()` just before the call) and its sequence
    number. The schedule is absolute, so a slow call does not shift the ones after it.
    Returns how far behind schedule the worst call started, in seconds.
    """
    interval = 1.0 / rate
    start = time.perf_counter() + 0.01
    worst = 0.0
    for n in range(count):
        due = start + n * interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            worst = max(worst, -delay)
        await system.enqueue("record", time.time(), n)
    return worst
