"""A fixed-rate schedule for load generators: call n is due at start + n / rate.

The schedule is absolute, so a slow call does not shift the ones after it; `worst_lag` says
how far behind schedule the latest-starting call was, in seconds.
"""

from __future__ import annotations

import asyncio
import time


class Schedule:
    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.start = time.perf_counter() + 0.01
        self.worst_lag = 0.0

    async def wait(self, n: int) -> float:
        """Sleep until call `n` is due (perf_counter time), and return that due time."""
        due = self.start + n * self.interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            self.worst_lag = max(self.worst_lag, -delay)
        return due
