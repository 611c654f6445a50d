"""The dashboard's overview at 100 000 notifications, in the suite.

A thin adapter: the measurement is `bench.dashboard_overview` (also runnable on its own as
`python -m bench.dashboard_overview`; see its docstring). Once per invocation, before the
runs, its `load()` fills the database `herald_bench_dashboard` (`BENCH_DASHBOARD_DATABASE_URL`)
with the notifications, events and history it describes, or keeps them if the row count
already matches. Each run then starts Herald's app in a fresh process (API role, no workers;
httpx on the ASGI app, so no network in the figures), signs in and calls its `measure()`:

- cold partial: the overview's live partial with its cache expired, so every sample runs
  the queries (the target is a median under 100 ms);
- page: the whole overview page, as a browser tab gets it;
- queries: the overview's queries alone, without HTTP or templates.

Per run, the median and p95 of those samples; the table shows the median (min-max) of those
across runs. There is one variant and so no baseline to compare with: ratios are all 1.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.core import Benchmark, Metric, Mode, Variant, register


@register
class DashboardOverview(Benchmark):
    name = "dashboard_overview"
    title = "Dashboard overview at 100 000 notifications (in-process ASGI, no network)"
    description = __doc__ or ""
    metrics = (
        Metric("cold_ms", "cold partial median", "ms", "lower"),
        Metric("cold_p95_ms", "cold partial p95", "ms", "lower"),
        Metric("page_ms", "page median", "ms", "lower"),
        Metric("queries_ms", "queries median", "ms", "lower"),
    )
    variants = (Variant("herald-dashboard", "Herald dashboard (API role)", "herald"),)
    baseline = "herald-dashboard"

    def params(self, mode: Mode) -> dict[str, Any]:
        return {
            "rows": {"full": 100_000, "quick": 10_000, "tiny": 2_000}[mode],
            "samples": {"full": 30, "quick": 4, "tiny": 3}[mode],
        }

    def timeout(self, params: dict[str, Any]) -> float:
        return params["samples"] * 3 + 90

    def setup(self, params: dict[str, Any]) -> None:
        from bench import dashboard_overview

        asyncio.run(
            dashboard_overview.load(dashboard_overview.bench_settings(), params["rows"], reuse=True)
        )

    async def child(self, variant: Variant, params: dict[str, Any]) -> dict[str, Any]:
        from bench import dashboard_overview

        timings = await dashboard_overview.measure(
            dashboard_overview.bench_settings(), params["samples"]
        )
        return {
            "metrics": {
                "cold_ms": timings["cold_partial"]["median_ms"],
                "cold_p95_ms": timings["cold_partial"]["p95_ms"],
                "page_ms": timings["page"]["median_ms"],
                "queries_ms": timings["queries"]["median_ms"],
            },
            "info": timings,
        }
