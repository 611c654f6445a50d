"""What the benchmark jobs record, in the process that runs them.

Every system's job functions (Herald's in `bench.jobs`, arq's and SAQ's in `bench.systems`)
call into the one `RECORDER` of the worker process, so one benchmark measures all systems the
same way: `started()` at the first line of a pick-up job, `noop_started()`/`noop_finished()`
around a throughput job.
"""

from __future__ import annotations

import asyncio
import time


class Recorder:
    def __init__(self) -> None:
        self.reset(0)

    def reset(self, expected: int, warmup: int = 0) -> None:
        """Expect `expected` jobs; the first `warmup` (by sequence number) are not measured."""
        self.expected = expected
        self.warmup = warmup
        self.latencies: list[float] = []
        self.seen: set[int] = set()
        self.finished = 0
        self.first_start: float | None = None
        self.last_end: float | None = None
        self.done = asyncio.Event()

    # -- pick-up ----------------------------------------------------------------------------
    def started(self, enqueued_at: float, n: int) -> None:
        """A pick-up job started: its latency is now minus the enqueue time it carries."""
        now = time.time()
        if n in self.seen:  # a re-run would count twice; none is expected
            return
        self.seen.add(n)
        if n >= self.warmup:
            self.latencies.append(now - enqueued_at)
        if len(self.seen) >= self.expected:
            self.done.set()

    # -- throughput -------------------------------------------------------------------------
    def noop_started(self) -> None:
        if self.first_start is None:
            self.first_start = time.perf_counter()

    def noop_finished(self) -> None:
        self.finished += 1
        if self.finished >= self.expected and self.last_end is None:
            self.last_end = time.perf_counter()
            self.done.set()


RECORDER = Recorder()
