"""Deliveries: one process draining a stored backlog, beside the minimal Litestar + arq app.

Before the process starts, this one stores N notifications over the four channels and
enqueues their delivery jobs (Herald's own service code, as the API does after its commit),
so nothing but delivering is measured: no submissions arrive. The process is `herald serve`
with the `log` provider, as deployed (API and workers in one process, the API idle), and
the same as a worker-only process (`ENABLE_API=false`). The baseline is the minimal app of
`single` (`bench.systems.litestar_arq_app`): N rows stored and N arq jobs enqueued
beforehand, its in-process arq worker (arq's defaults: 10 jobs at once) marking each `sent`
in a transaction of its own. Herald does more per delivery: a claim per attempt with its
event row, the provider call, the outcome with its event, retry bookkeeping and metrics.

Per run, from the moment the process answers `/health/live` (start-up left out; what was
delivered before it is subtracted):
- delivered/s: deliveries after that moment / (last `sent_at` - that moment);
- CPU per delivery: the process's user + system time over the same span, per delivery.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from bench.benchmarks.single import LITESTAR_ARQ, LitestarArqServe
from bench.core import Metric, Mode, Variant, register
from bench.env import DATABASE_URL, REDIS_URL
from bench.serve import (
    CHANNELS,
    HeraldServe,
    Sent,
    ThroughHerald,
    insert_notifications,
    payloads,
    prepare_database,
)


@register
class Drain(ThroughHerald):
    name = "drain"
    title = "Deliveries: one process draining a stored backlog (log provider)"
    description = __doc__ or ""
    metrics = (
        Metric("delivered_per_s", "delivered/s", "notifications/s", "higher"),
        Metric("cpu_ms", "CPU per delivery", "ms", "lower"),
    )
    variants = (
        LITESTAR_ARQ,
        Variant("herald", "Herald unified (API idle)", "herald"),
        Variant(
            "herald-workers",
            "Herald worker-only (ENABLE_API=false)",
            "herald",
            extra={"settings": {"ENABLE_API": "false"}},
        ),
    )
    baseline = "litestar-arq"

    def params(self, mode: Mode) -> dict[str, Any]:
        return {"notifications": {"full": 10000, "quick": 4000, "tiny": 200}[mode]}

    def timeout(self, params: dict[str, Any]) -> float:
        return float(params["notifications"]) / 50 + 90

    async def child(self, variant: Variant, params: dict[str, Any]) -> dict[str, Any]:
        total = params["notifications"]
        await prepare_database()
        if variant.system == "litestar-arq":
            await _baseline_backlog(total)
            server: HeraldServe = LitestarArqServe("litestar-arq")
            table = "baseline_notifications"
        else:
            await insert_notifications(payloads(total, "backlog"), enqueue=True)
            server = HeraldServe(**variant.extra.get("settings", {}))
            table = "notifications"
        sent = await Sent.open(table)
        try:
            await server.start()
            cpu_before = server.cpu()
            started = time.time()
            before, _ = await sent.now()
            last = await sent.wait(total, timeout=self.timeout(params))
            cpu = server.cpu() - cpu_before
        finally:
            await sent.close()
            await server.stop()
        delivered = total - before
        if delivered < total / 2:
            raise RuntimeError(f"{before} of {total} were delivered during start-up; make N larger")
        return {
            "metrics": {
                "delivered_per_s": delivered / (last - started),
                "cpu_ms": cpu * 1000 / delivered,
            },
            "info": {"delivered_during_startup": before, "seconds": last - started},
        }


async def _baseline_backlog(total: int) -> None:
    """The baseline app's rows and arq jobs, as its POST leaves them (table made if missing)."""
    from arq import create_pool
    from arq.connections import RedisSettings
    from sqlalchemy.ext.asyncio import create_async_engine

    from bench.systems.litestar_arq_app import Base, Row

    engine = create_async_engine(DATABASE_URL)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
            await connection.execute(Row.__table__.delete())
            now = datetime.now(UTC)
            rows = [
                {
                    "id": uuid.uuid4(),
                    "channel": CHANNELS[n % len(CHANNELS)],
                    "recipient": f"backlog-{n}",
                    "subject": "Backlog",
                    "body": "A stored notification.",
                    "reference": None,
                    "status": "queued",
                    "created_at": now,
                    "sent_at": None,
                }
                for n in range(total)
            ]
            await connection.execute(Row.__table__.insert(), rows)
    finally:
        await engine.dispose()
    arq = await create_pool(RedisSettings.from_dsn(REDIS_URL))
    try:
        for start in range(0, total, 200):
            chunk = rows[start : start + 200]
            await asyncio.gather(*(arq.enqueue_job("mark_sent", str(row["id"])) for row in chunk))
    finally:
        await arq.aclose()
