"""Pick-up latency: how long a job waits between its enqueue and the start of its function.

Jobs are enqueued at a steady rate (100/s) into a running, otherwise idle worker; each job
carries `time.time()` taken just before its enqueue call, and its function records
`time.time()` on its first line, so the latency includes the enqueue round trip, the wait for
the worker to notice, the pick and the system's own per-job bookkeeping before the function
runs. The first jobs (`warmup`) are not measured. Per run: p50 and p99 over all jobs.

Variants:
- Herald, enqueued in-process: the app's own `JobQueue` (what the API uses), which wakes the
  worker at once through an in-process event.
- Herald, enqueued by another process (a replica, a script): the enqueue script publishes the
  queue on Redis pub/sub (`herald:wake`), which wakes the workers of every process; the poll
  every `POLL_DELAY_SECONDS` (default 0.05 s) is the fallback.
- Plain arq at its default `poll_delay` (0.5 s, the baseline) and at 0.05 s, enqueued by
  another process.
- SAQ, enqueued by another process: its workers block on Redis (BLMOVE), no polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import subprocess
from typing import Any

from bench.core import Benchmark, Metric, Mode, Variant, register
from bench.env import ROOT, child_env, python
from bench.load import steady_rate
from bench.recorder import RECORDER
from bench.stats import percentile
from bench.systems import make_system

INPROC = {"enqueue": "in-process"}
REMOTE = {"enqueue": "another process"}


@register
class Pickup(Benchmark):
    name = "pickup"
    title = "Pick-up latency (start - enqueue) at a steady 100 jobs/s"
    description = __doc__ or ""
    metrics = (
        Metric("p50_ms", "p50", "ms", "lower", log_scale=True),
        Metric("p99_ms", "p99", "ms", "lower", log_scale=True),
    )
    variants = (
        Variant("herald-inproc", "Herald, enqueued in-process", "herald", {}, INPROC),
        Variant("herald-remote", "Herald, enqueued by another process", "herald", {}, REMOTE),
        Variant("arq-0.5", "arq, poll_delay=0.5 (default)", "arq", {"poll_delay": 0.5}, REMOTE),
        Variant("arq-0.05", "arq, poll_delay=0.05", "arq", {"poll_delay": 0.05}, REMOTE),
        Variant("saq", "SAQ (blocking dequeue)", "saq", {}, REMOTE),
    )
    baseline = "arq-0.5"

    def params(self, mode: Mode) -> dict[str, Any]:
        duration = {"full": 10.0, "quick": 0.6, "tiny": 0.3}[mode]
        warmup = {"full": 20, "quick": 10, "tiny": 5}[mode]
        return {"rate": 100, "duration_s": duration, "warmup": warmup}

    def timeout(self, params: dict[str, Any]) -> float:
        return float(params["duration_s"]) + 60

    async def child(self, variant: Variant, params: dict[str, Any]) -> dict[str, Any]:
        rate, warmup = params["rate"], params["warmup"]
        total = warmup + round(rate * params["duration_s"])
        RECORDER.reset(total, warmup)
        system = make_system(variant.system, variant.options)
        await system.start_worker()
        lag = None
        try:
            if variant.extra == INPROC:
                system.use_worker_client()
                lag = await steady_rate(system, rate, total)
            else:
                await _enqueue_from_another_process(variant, rate, total)
            await asyncio.wait_for(RECORDER.done.wait(), timeout=15)
        finally:
            await system.stop_worker()
        latencies_ms = [s * 1000 for s in RECORDER.latencies]
        return {
            "metrics": {
                "p50_ms": percentile(latencies_ms, 50),
                "p99_ms": percentile(latencies_ms, 99),
            },
            "info": {
                "jobs": len(latencies_ms),
                "mean_ms": statistics.fmean(latencies_ms),
                "max_ms": max(latencies_ms),
                "schedule_lag_ms": None if lag is None else lag * 1000,
            },
        }


async def _enqueue_from_another_process(variant: Variant, rate: float, total: int) -> None:
    proc = await asyncio.create_subprocess_exec(
        python(),
        "-m",
        "bench.enqueuer",
        variant.system,
        json.dumps(variant.options),
        str(rate),
        str(total),
        cwd=ROOT,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        code = await asyncio.wait_for(proc.wait(), timeout=total / rate + 30)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    if code != 0:
        raise RuntimeError(f"the enqueuer exited with {code}")
