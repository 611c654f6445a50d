"""Memory: one unified process vs the split deployment it replaces, after the same workload.

Every process is `herald serve` as deployed (a subprocess; the `log` provider), against
`herald_bench` and Redis database 10, emptied before every run:
- unified (the baseline): one process, API and the workers of all four queues;
- split: one API-only process (`ENABLE_WORKERS=false`) and one worker-only process per
  channel (`ENABLE_API=false`, `WORKER_QUEUES=email`, `sms`, `push`, `whatsapp`): five.

Once every process is ready (and one second later), their resident memory is read; then this
process submits the workload through the API (2000 notifications over the four channels in
batches of 100, 4 requests at a time; 200 with `--quick`), waits until all are `sent`
(watched in Postgres), waits one more second and reads it again. Per deployment, summed over
its processes, from `/proc/PID/status` and `/proc/PID/smaps_rollup`:
- RSS idle: VmRSS before the workload;
- RSS after: VmRSS after it, the headline figure;
- peak RSS: VmHWM, the most each process ever held;
- PSS after: like RSS, but pages shared between processes (the interpreter, shared
  libraries) are divided among them, so it does not count them once per process.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from bench.core import Metric, Mode, Variant, register
from bench.serve import (
    CHANNELS,
    HeraldServe,
    Sent,
    ThroughHerald,
    payloads,
    prepare_database,
    start_during,
    stop_all,
)

BATCH = 100
IN_FLIGHT = 4


@register
class Memory(ThroughHerald):
    name = "memory"
    title = "Resident memory: one unified process vs API + one worker process per channel"
    description = __doc__ or ""
    metrics = (
        Metric("rss_idle_mib", "RSS idle", "MiB", "lower"),
        Metric("rss_mib", "RSS after", "MiB", "lower"),
        Metric("hwm_mib", "peak RSS", "MiB", "lower"),
        Metric("pss_mib", "PSS after", "MiB", "lower"),
    )
    variants = (
        Variant("herald-unified", "Herald unified (1 process)", "herald", extra={"split": False}),
        Variant(
            "herald-split",
            "Herald split (API + 4 worker processes)",
            "herald",
            extra={"split": True},
        ),
    )
    baseline = "herald-unified"
    # Resident memory barely moves between runs (the full run's five differ by under 1%), and
    # the split variant starts five processes: one run is enough for a quick look.
    runs = {"full": 5, "quick": 1, "tiny": 1}

    def params(self, mode: Mode) -> dict[str, Any]:
        return {
            "notifications": {"full": 2000, "quick": 200, "tiny": 100}[mode],
            "batch": BATCH,
            "settle_s": {"full": 1.0, "quick": 0.3, "tiny": 0.2}[mode],
        }

    def timeout(self, params: dict[str, Any]) -> float:
        return params["notifications"] / 20 + 90

    async def child(self, variant: Variant, params: dict[str, Any]) -> dict[str, Any]:
        total = params["notifications"]
        if variant.extra["split"]:
            api = HeraldServe("api", ENABLE_WORKERS="false")
            processes = [api] + [
                HeraldServe(channel, ENABLE_API="false", WORKER_QUEUES=channel)
                for channel in CHANNELS
            ]
        else:
            api = HeraldServe("unified")
            processes = [api]
        sent = await Sent.open()
        try:
            key = await start_during(processes, prepare_database(), timeout=60)
            await asyncio.sleep(params["settle_s"])
            idle = {p.name: p.memory() for p in processes}
            await _submit(api.url, key, total, params["batch"])
            await sent.wait(total, timeout=total / 20 + 30)
            await asyncio.sleep(params["settle_s"])
            after = {p.name: p.memory() for p in processes}
        finally:
            await sent.close()
            await stop_all(processes)
        return {
            "metrics": {
                "rss_idle_mib": sum(m["rss"] for m in idle.values()),
                "rss_mib": sum(m["rss"] for m in after.values()),
                "hwm_mib": sum(m["hwm"] for m in after.values()),
                "pss_mib": sum(m["pss"] for m in after.values()),
            },
            "info": {"processes": len(processes), "idle": idle, "after": after},
        }


async def _submit(url: str, key: str, total: int, batch: int) -> None:
    items = payloads(total, "memory")
    bodies = [
        json.dumps({"notifications": items[i : i + batch]}).encode() for i in range(0, total, batch)
    ]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    pending = iter(bodies)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:

        async def lane() -> None:
            for body in pending:
                response = await client.post("/v1/notifications/batch", content=body)
                if response.status_code != 202:
                    raise RuntimeError(f"{response.status_code}: {response.text[:300]}")

        await asyncio.gather(*(lane() for _ in range(IN_FLIGHT)))
