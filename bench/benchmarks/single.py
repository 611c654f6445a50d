"""Single submissions: Herald beside a minimal Litestar + arq + SQLAlchemy app (issue 14).

The baseline is `bench.systems.litestar_arq_app`: one row inserted per POST in its own
transaction, one arq job per row that marks it `sent`, its arq worker in the same process.
Herald is `herald serve` as deployed (API and workers in one process, `log` providers), once
as it ships (single submissions committed in groups) and once with
`SUBMISSION_GROUP_LIMIT=1` (each single submission committed alone, as before group
commit), so the group commit's effect is measured in the same run as the baseline.

Each variant gets the same notifications (`bench.serve.payloads`, over the four channels)
from the same load generator (`bench.loadgen`, 32 keep-alive connections, closed loop), as
single `POST /v1/notifications` requests, after 40 single warm-up requests that are
delivered before the clock starts. Per run:
- accepted/s: notifications / (last 202 - first request sent);
- accept p50 and p99: per request, send to response;
- delivered/s: notifications / (last `sent_at` - first request sent);
- CPU per notification: the server process's user + system time from the first request to
  the last `sent`, over the notifications (accepting and delivering one).
"""

from __future__ import annotations

import time
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
    run_loadgen,
)

CONCURRENCY = 32
WARMUP = 40


class LitestarArqServe(HeraldServe):
    """The baseline app, started, stopped and measured like `herald serve`."""

    command = ("bench.systems.litestar_arq_app",)


# The baseline of `single` and `drain`.
LITESTAR_ARQ = Variant("litestar-arq", "minimal Litestar + arq + SQLAlchemy app", "litestar-arq")


@register
class SingleSubmissions(ThroughHerald):
    name = "single"
    title = "Single submissions, 32 connections: Herald vs a minimal Litestar + arq app"
    description = __doc__ or ""
    metrics = (
        Metric("accepted_per_s", "accepted/s", "notifications/s", "higher"),
        Metric("p50_ms", "accept p50", "ms", "lower", log_scale=True),
        Metric("p99_ms", "accept p99", "ms", "lower", log_scale=True),
        Metric("delivered_per_s", "delivered/s", "notifications/s", "higher"),
        Metric("cpu_ms", "CPU per notification", "ms", "lower"),
    )
    variants = (
        LITESTAR_ARQ,
        Variant("herald", "Herald (group commit)", "herald"),
        Variant(
            "herald-no-groups",
            "Herald, SUBMISSION_GROUP_LIMIT=1 (each committed alone)",
            "herald",
            extra={"settings": {"SUBMISSION_GROUP_LIMIT": "1"}},
        ),
    )
    baseline = "litestar-arq"

    def params(self, mode: Mode) -> dict[str, Any]:
        total = {"full": 4000, "quick": 1000, "tiny": 100}[mode]
        return {"notifications": total, "concurrency": CONCURRENCY, "channels": list(CHANNELS)}

    def timeout(self, params: dict[str, Any]) -> float:
        return float(params["notifications"]) / 20 + 90

    async def child(self, variant: Variant, params: dict[str, Any]) -> dict[str, Any]:
        total = params["notifications"]
        key = await prepare_database()
        if variant.system == "litestar-arq":
            server: HeraldServe = LitestarArqServe("litestar-arq")
            table = "baseline_notifications"
        else:
            server = HeraldServe(**variant.extra.get("settings", {}))
            table = "notifications"
        await server.start()
        sent = await Sent.open(table)
        try:
            await _warm_up(server, key)
            await sent.wait(WARMUP, timeout=30)
            cpu_before = server.cpu()
            load = await run_loadgen(
                {
                    "mode": "submit",
                    "url": server.url,
                    "key": key,
                    "total": total,
                    "batch": 1,
                    "concurrency": params["concurrency"],
                    "channels": params["channels"],
                    "prefix": "run",
                },
                timeout=self.timeout(params),
            )
            if load["accepted"] != total:
                raise RuntimeError(f"accepted {load['accepted']} of {total}: {load['errors']}")
            last_sent = await sent.wait(WARMUP + total, timeout=total / 20 + 30)
            cpu = server.cpu() - cpu_before
        finally:
            await sent.close()
            await server.stop()
        accept_s = load["finished_at"] - load["started_at"]
        return {
            "metrics": {
                "accepted_per_s": total / accept_s,
                "p50_ms": load["p50_ms"],
                "p99_ms": load["p99_ms"],
                "delivered_per_s": total / (last_sent - load["started_at"]),
                "cpu_ms": cpu * 1000 / total,
            },
            "info": {
                "accept_s": accept_s,
                "mean_ms": load["mean_ms"],
                "max_ms": load["max_ms"],
                "measured_at": time.time(),
            },
        }


async def _warm_up(server: HeraldServe, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
        for item in payloads(WARMUP, "warmup"):
            response = await client.post("/v1/notifications", json=item)
            if response.status_code != 202:
                raise RuntimeError(f"warm-up failed: {response.text[:300]}")
