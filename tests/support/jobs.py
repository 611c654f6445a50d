"""Jobs used by the runtime tests, loaded into `herald serve` with JOB_MODULES=tests.support.jobs.

Each run records itself in Redis under `test:ran:<token>` (pid, queue, start and end times),
so a test can see which process ran a job and whether it finished.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

from herald.queue import JobContext, job


async def _record(ctx: JobContext, token: str, sleep_seconds: float) -> None:
    redis = ctx.resources.redis
    entry = {"pid": os.getpid(), "queue": ctx.queue, "started": time.time(), "try": ctx.job_try}
    await redis.set(f"test:started:{token}", json.dumps(entry))
    await asyncio.sleep(sleep_seconds)
    entry["finished"] = time.time()
    await redis.set(f"test:ran:{token}", json.dumps(entry))


@job(queue="a", name="test.record_a")
async def record_a(ctx: JobContext, token: str, sleep_seconds: float = 0) -> None:
    await _record(ctx, token, sleep_seconds)


@job(queue="b", name="test.record_b")
async def record_b(ctx: JobContext, token: str, sleep_seconds: float = 0) -> None:
    await _record(ctx, token, sleep_seconds)


@job(queue="a", name="test.crash")
async def crash(ctx: JobContext, api_key: str, body: str) -> None:
    """A job that fails with secrets in its local variables (the log-canary tests)."""
    credentials = {"authorization": f"Bearer {api_key}", "body": body}
    raise RuntimeError(f"crashed with {len(credentials)} values in hand")


_held: list[bytes] = []


@job(queue="a", name="test.hog")
async def hog(ctx: JobContext, megabytes: int) -> None:
    """Grow the process by `megabytes` MiB and keep it (the memory-ceiling test)."""
    _held.append(b"\x01" * (megabytes * 1024 * 1024))


@job(queue="a", name="test.crash_loudly")
async def crash_loudly(ctx: JobContext, api_key: str, email: str, phone: str) -> None:
    """A job whose error message itself names an address, a number and a key (Sentry tests)."""
    raise RuntimeError(f"could not reach {email} or {phone} with {api_key}")
