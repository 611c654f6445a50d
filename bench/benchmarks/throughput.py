"""Job throughput: how fast a worker drains a backlog of no-op jobs.

The jobs are enqueued before the worker starts; the figure is jobs / (end of the last job -
start of the first), so it leaves out start-up. Every system runs 10 jobs at once (Herald's
`WORKER_CONCURRENCY`, arq's `max_jobs`, SAQ's `concurrency`: all their defaults). A no-op job
measures the per-job cost of the system itself: Redis round trips, bookkeeping, logging.

Variants: Herald's runtime as deployed (`LOG_LEVEL=INFO`: two JSON log lines per job), the
same with `LOG_LEVEL=WARNING` (to show what per-job logging costs), plain arq with
`poll_delay=0.05` (the baseline; logging as the `arq` command sets it up, one line per job
start and end) and SAQ (logging as the `saq` command sets it up: nothing per job).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.core import Benchmark, Metric, Mode, Variant, register
from bench.recorder import RECORDER
from bench.systems import make_system


@register
class Throughput(Benchmark):
    name = "throughput"
    title = "Throughput draining pre-enqueued no-op jobs (concurrency 10)"
    description = __doc__ or ""
    metrics = (Metric("jobs_per_s", "jobs/s", "jobs/s", "higher"),)
    variants = (
        Variant("herald", "Herald runtime (LOG_LEVEL=INFO)", "herald", {}),
        Variant(
            "herald-quiet", "Herald runtime (LOG_LEVEL=WARNING)", "herald", {"log_level": "WARNING"}
        ),
        Variant("arq-0.05", "arq, poll_delay=0.05", "arq", {"poll_delay": 0.05}),
        Variant("saq", "SAQ", "saq", {}),
    )
    baseline = "arq-0.05"

    def params(self, mode: Mode) -> dict[str, Any]:
        return {"jobs": {"full": 10_000, "quick": 500, "tiny": 100}[mode]}

    def timeout(self, params: dict[str, Any]) -> float:
        return float(params["jobs"]) / 50 + 60

    async def child(self, variant: Variant, params: dict[str, Any]) -> dict[str, Any]:
        jobs = params["jobs"]
        system = make_system(variant.system, variant.options)
        await system.connect()
        enqueue_started = time.perf_counter()
        await system.enqueue_bulk("noop", [(n,) for n in range(jobs)])
        enqueue_seconds = time.perf_counter() - enqueue_started
        await system.disconnect()

        RECORDER.reset(jobs)
        started = time.perf_counter()
        await system.start_worker()
        try:
            await asyncio.wait_for(RECORDER.done.wait(), timeout=jobs / 50 + 30)
        finally:
            await system.stop_worker()
        assert RECORDER.first_start is not None
        assert RECORDER.last_end is not None
        drain = RECORDER.last_end - RECORDER.first_start
        return {
            "metrics": {"jobs_per_s": jobs / drain},
            "info": {
                "jobs": jobs,
                "drain_s": drain,
                "startup_s": RECORDER.first_start - started,
                "enqueue_s": enqueue_seconds,
            },
        }
