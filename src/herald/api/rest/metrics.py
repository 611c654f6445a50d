"""`/metrics`: Prometheus text, one scrape target per process, served in every role."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


@get("/metrics", include_in_schema=False)
async def metrics_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus text format: HTTP, job, queue and runtime metrics of this process."""
    collect = request.app.state.get("collect_queue_metrics")
    if collect is not None:
        await collect()
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


route_handlers = [metrics_endpoint]
