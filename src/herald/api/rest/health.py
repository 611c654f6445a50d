"""`/health/live` and `/health/ready`: served in every role, without an API key."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Response, get
from litestar.datastructures import State
from sqlalchemy import text

from herald.resources import Resources

_CHECK_TIMEOUT_SECONDS = 2.0


def _resources(state: State) -> Resources:
    resources: Resources = state.resources
    return resources


@get("/health/live", tags=["health"], sync_to_thread=False)
def live(state: State) -> Response[dict[str, Any]]:
    """200 while the process and its worker loops are alive. Never touches Postgres or Redis."""
    resources = _resources(state)
    loops = resources.runtime.health() if resources.runtime else []
    dead = [loop.queue for loop in loops if not loop.alive and not resources.draining]
    body: dict[str, Any] = {
        "status": "ok" if not dead else "failing",
        "role": resources.role,
        "workers": [
            {
                "queue": loop.queue,
                "state": loop.state,
                "alive": loop.alive,
                "running_jobs": loop.running_jobs,
                "restarts": loop.restarts,
                "seconds_since_iteration": loop.seconds_since_iteration,
            }
            for loop in loops
        ],
    }
    if dead:
        body["detail"] = f"worker loops dead or wedged: {', '.join(dead)}"
    return Response(body, status_code=503 if dead else 200)


async def _check_postgres(resources: Resources) -> None:
    async with resources.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def _check_redis(resources: Resources) -> None:
    await resources.redis.ping()


async def _run_check(check: Any, resources: Resources) -> str:
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT_SECONDS):
            await check(resources)
    except Exception as exc:
        return f"failing: {type(exc).__name__}: {exc}".strip()[:300]
    return "ok"


async def check_dependencies(resources: Resources) -> dict[str, str]:
    """`ok` or `failing: <why>` for Postgres and Redis (also gRPC's health service's test)."""
    postgres, redis = await asyncio.gather(
        _run_check(_check_postgres, resources), _run_check(_check_redis, resources)
    )
    return {"postgres": postgres, "redis": redis}


@get("/health/ready", tags=["health"])
async def ready(state: State) -> Response[dict[str, Any]]:
    """200 when Postgres and Redis answer and the process is not draining; else 503."""
    resources = _resources(state)
    checks: dict[str, Any] = await check_dependencies(resources)
    checks["draining"] = resources.draining
    failing = [name for name in ("postgres", "redis") if checks[name] != "ok"]
    if resources.draining:
        failing.append("draining")
    body: dict[str, Any] = {"status": "ready" if not failing else "unavailable", "checks": checks}
    if failing:
        body["detail"] = f"not ready: {', '.join(failing)}"
    return Response(body, status_code=503 if failing else 200)


route_handlers = [live, ready]
