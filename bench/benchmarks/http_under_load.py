"""HTTP under worker load: what in-process workers cost the API's latency.

Herald runs as `herald serve` (a subprocess: API and workers in one process, the `log`
provider) against `herald_bench` and Redis database 10, emptied before every run. Before it
starts, this process stores 200 notifications already `sent` (each with its three events,
as a delivery leaves them): the targets of the reads. A load generator in a process of its
own (`bench.loadgen`, up to 32 connections) then sends `GET /v1/notifications/{id}`
at a fixed 200 requests/s (open loop: latency counted from each request's scheduled time)
for 10 s (0.6 s with `--quick`). Per run: p50 and p99 of that latency.

Variants:
- unified, workers idle (the baseline): nothing to deliver; the workers only poll.
- unified, workers saturated: a backlog of notifications over the four channels is stored and its
  delivery jobs enqueued (with Herald's own service code, as the API would) before Herald
  starts, large enough that all four queues run at their full concurrency for the whole
  measurement. Nothing but the reads goes through the API. A run fails if the backlog runs
  out before the measurement ends.

The ratio saturated / idle is what delivering costs the API when both share one process.
For comparison, the split deployment under the same backlog: the reads go to an API-only
process (`ENABLE_WORKERS=false`) while one worker-only process (`ENABLE_API=false`, all four
queues) delivers; on this two-core machine the two processes still share the CPUs.
`BENCH_HTTP_SATURATED_SETTINGS` adds saturated variants with other settings (see below).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from bench.core import Metric, Mode, Variant, register
from bench.serve import (
    HeraldServe,
    Sent,
    ThroughHerald,
    insert_notifications,
    payloads,
    prepare_database,
    run_loadgen,
    start_during,
    stop_all,
)

RATE = 200
CONCURRENCY = 32


def _extra_variants() -> tuple[Variant, ...]:
    """More saturated variants with other Herald settings, for experiments: set
    `BENCH_HTTP_SATURATED_SETTINGS="WORKER_CONCURRENCY=2;DATABASE_POOL_SIZE=40,LOG_LEVEL=WARNING"`
    (`;` between variants, `,` between the settings of one)."""
    specs = os.environ.get("BENCH_HTTP_SATURATED_SETTINGS", "")
    return tuple(
        Variant(
            f"herald-saturated-{i + 1}",
            f"Herald, workers saturated, {spec}",
            "herald",
            extra={"saturated": True, "settings": dict(kv.split("=", 1) for kv in spec.split(","))},
        )
        for i, spec in enumerate(s.strip() for s in specs.split(";") if s.strip())
    )


@register
class HttpUnderLoad(ThroughHerald):
    name = "http_under_load"
    title = f"GET /v1/notifications/{{id}} at {RATE} req/s, workers idle vs saturated"
    description = __doc__ or ""
    metrics = (
        Metric("p50_ms", "p50", "ms", "lower", log_scale=True),
        Metric("p99_ms", "p99", "ms", "lower", log_scale=True),
    )
    variants = (
        Variant(
            "herald-idle", "Herald unified, workers idle", "herald", extra={"saturated": False}
        ),
        Variant(
            "herald-saturated",
            "Herald unified, workers saturated",
            "herald",
            extra={"saturated": True},
        ),
        Variant(
            "herald-split-saturated",
            "Herald split: API process, beside a saturated worker process",
            "herald",
            extra={"saturated": True, "split": True},
        ),
        *_extra_variants(),
    )
    baseline = "herald-idle"

    def params(self, mode: Mode) -> dict[str, Any]:
        return {
            "rate": RATE,
            "duration_s": {"full": 10.0, "quick": 0.6, "tiny": 0.5}[mode],
            "targets": 50 if mode == "tiny" else 200,
            # Enough for the start and the whole measurement at ~3 000 deliveries/s, more
            # than one process delivers here on a fast day; a run fails if it runs out.
            "backlog": {"full": 40000, "quick": 10000, "tiny": 8000}[mode],
            "concurrency": CONCURRENCY,
        }

    def timeout(self, params: dict[str, Any]) -> float:
        return params["duration_s"] + params["backlog"] / 500 + 90

    async def child(self, variant: Variant, params: dict[str, Any]) -> dict[str, Any]:
        saturated = variant.extra["saturated"]
        settings = variant.extra.get("settings", {})

        async def prepare() -> tuple[str, list[str]]:
            key = await prepare_database()
            targets = await insert_notifications(payloads(params["targets"], "target"), sent=True)
            if saturated:
                await insert_notifications(payloads(params["backlog"], "backlog"), enqueue=True)
            return key, targets

        if variant.extra.get("split"):
            api = HeraldServe("api", ENABLE_WORKERS="false", **settings)
            processes = [api, HeraldServe("workers", ENABLE_API="false", **settings)]
        else:
            api = HeraldServe("unified", **settings)
            processes = [api]
        sent = await Sent.open()
        try:
            key, targets = await start_during(processes, prepare())
            before, _ = await sent.now()
            if saturated:
                # Let the workers get going (the backlog is on the queues by now).
                await _wait_for_progress(sent, before)
            else:
                await asyncio.sleep(0.5)
            sent_before, _ = await sent.now()
            cpu_before = [p.cpu() for p in processes]
            wall_before = time.perf_counter()
            load = await run_loadgen(
                {
                    "mode": "get",
                    "url": api.url,
                    "key": key,
                    "ids": targets,
                    "rate": params["rate"],
                    "duration": params["duration_s"],
                    "concurrency": params["concurrency"],
                },
                timeout=params["duration_s"] + 90,
            )
            wall = time.perf_counter() - wall_before
            cpu = {p.name: (p.cpu() - c) / wall for p, c in zip(processes, cpu_before, strict=True)}
            sent_after, _ = await sent.now()
            statuses = await sent.statuses()
        finally:
            await sent.close()
            await stop_all(processes)
        if load["statuses"] != {"200": load["requests"]}:
            raise RuntimeError(f"not all reads answered 200: {load['statuses']} {load['errors']}")
        left = params["targets"] + params["backlog"] - sent_after if saturated else 0
        if saturated and left <= 0:
            raise RuntimeError("the backlog ran out during the measurement; make it larger")
        return {
            "metrics": {"p50_ms": load["p50_ms"], "p99_ms": load["p99_ms"]},
            "info": {
                "requests": load["requests"],
                "achieved_rate": load["achieved_rate"],
                "mean_ms": load["mean_ms"],
                "max_ms": load["max_ms"],
                "schedule_lag_max_ms": load["schedule_lag_max_ms"],
                "deliveries_per_s_during": (sent_after - sent_before) / wall,
                "backlog_left": left,
                # Cores' worth of CPU each Herald process used while the generator ran.
                "cpu_share": cpu,
                "statuses": statuses,
            },
        }


async def _wait_for_progress(sent: Sent, before: int, timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.05)):
        count, _ = await sent.now()
        if count >= before + 50:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the workers did not start delivering the backlog")
