"""The batch path: 1000 notifications in one `POST /v1/notifications/batch`, beside plain arq
and SAQ enqueueing 1000 jobs, in the same run.

Herald runs as `herald serve` (a subprocess: API and workers in one process, the `log`
provider for every channel) against `herald_bench` and Redis database 10, emptied before
every run. After a warm-up batch of 20 (delivered before the clock starts), this process
sends one request with 1000 notifications spread over the four channels, then follows
delivery in Postgres with one query (`count(*)` and `max(sent_at)` of the `sent` rows).

- accepted/s: 1000 / the request's round trip. The endpoint validates all 1000, inserts
  them and their first events (one statement each), commits, then enqueues the 1000
  delivery jobs in one Redis round trip, and answers with the 1000 created notifications.
- delivered/s and "last sent after": 1000 / (last `sent_at` - request sent), and that time.

The baselines only enqueue 1000 jobs (payload: a notification id and an attempt number, as
Herald's delivery jobs carry), from this process, after a warm-up of 20, with no worker:
- arq: `ArqRedis.enqueue_job` per job (its only way: a WATCH/MULTI/EXEC transaction per job),
  50 in flight at once so the round trips overlap (the baseline);
- SAQ: `Queue.enqueue` per job, 50 in flight. SAQ has no bulk enqueue: `Queue.map` enqueues
  the same way and then waits for results, and `Queue.batch` only groups jobs for abort;
- Herald's own `JobQueue.enqueue_many` of 1000 delivery jobs (what the endpoint does after
  its commit): one Lua script call.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from bench.core import Metric, Mode, Variant, register
from bench.env import REDIS_URL
from bench.serve import (
    HeraldServe,
    Sent,
    ThroughHerald,
    payloads,
    prepare_database,
    start_during,
)

WARMUP = 20
IN_FLIGHT = 50
ENQUEUE_ONLY = ("accepted_per_s",)


@register
class Batch(ThroughHerald):
    name = "batch"
    title = "One batch request of N notifications vs enqueueing N jobs"
    description = __doc__ or ""
    metrics = (
        Metric("accepted_per_s", "accepted/s", "notifications or jobs/s", "higher"),
        Metric("delivered_per_s", "delivered/s", "notifications/s", "higher"),
        Metric("last_sent_s", "last sent after", "s", "lower"),
    )
    variants = (
        Variant("herald-api", "Herald, POST /v1/notifications/batch (stored + enqueued)", "herald"),
        Variant(
            "herald-enqueue",
            "Herald JobQueue.enqueue_many (enqueue only)",
            "herald",
            metrics=ENQUEUE_ONLY,
        ),
        Variant("arq", "arq enqueue_job per job (enqueue only)", "arq", metrics=ENQUEUE_ONLY),
        Variant("saq", "SAQ Queue.enqueue per job (enqueue only)", "saq", metrics=ENQUEUE_ONLY),
    )
    baseline = "arq"

    def params(self, mode: Mode) -> dict[str, Any]:
        total = {"full": 1000, "quick": 300, "tiny": 100}[mode]
        return {"notifications": total, "in_flight": IN_FLIGHT}

    def timeout(self, params: dict[str, Any]) -> float:
        return 120.0

    async def child(self, variant: Variant, params: dict[str, Any]) -> dict[str, Any]:
        if variant.key == "herald-api":
            return await _through_api(params["notifications"])
        enqueue = {"herald-enqueue": _herald, "arq": _arq, "saq": _saq}[variant.key]
        jobs = [(str(uuid.uuid4()), 1) for _ in range(params["notifications"] + WARMUP)]
        seconds = await enqueue(jobs, params["in_flight"])
        return {
            "metrics": {"accepted_per_s": params["notifications"] / seconds},
            "info": {"enqueue_s": seconds},
        }


async def _through_api(total: int) -> dict[str, Any]:
    herald = HeraldServe()
    sent = await Sent.open()
    try:
        key = await start_during([herald], prepare_database())
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        async with httpx.AsyncClient(base_url=herald.url, headers=headers, timeout=60) as client:
            warmup = json.dumps({"notifications": payloads(WARMUP, "warmup")}).encode()
            response = await client.post("/v1/notifications/batch", content=warmup)
            if response.status_code != 202:
                raise RuntimeError(f"warm-up: {response.status_code}: {herald.logs()}")
            await sent.wait(WARMUP, timeout=30)
            body = json.dumps({"notifications": payloads(total, "run")}).encode()
            started = time.time()
            clock = time.perf_counter()
            response = await client.post("/v1/notifications/batch", content=body)
            accept_s = time.perf_counter() - clock
            if response.status_code != 202:
                raise RuntimeError(f"{response.status_code}: {herald.logs()}")
        last_sent = await sent.wait(WARMUP + total, timeout=total / 20 + 30)
    finally:
        await sent.close()
        await herald.stop()
    deliver_s = last_sent - started
    return {
        "metrics": {
            "accepted_per_s": total / accept_s,
            "delivered_per_s": total / deliver_s,
            "last_sent_s": deliver_s,
        },
        "info": {"accept_s": accept_s, "response_bytes": len(response.content)},
    }


async def _windowed(calls: list[Callable[[], Awaitable[Any]]], in_flight: int) -> None:
    """Run the calls with at most `in_flight` awaiting at once, each starting as one ends."""
    pending = iter(calls)

    async def lane() -> None:
        for call in pending:
            await call()

    await asyncio.gather(*(lane() for _ in range(in_flight)))


async def _timed(
    warmup: list[Callable[[], Awaitable[Any]]],
    calls: list[Callable[[], Awaitable[Any]]],
    in_flight: int,
) -> float:
    await _windowed(warmup, in_flight)
    clock = time.perf_counter()
    await _windowed(calls, in_flight)
    return time.perf_counter() - clock


async def _herald(jobs: list[tuple[str, int]], in_flight: int) -> float:
    from redis.asyncio import Redis

    from herald.notifications.unit_of_work import deliver_job_id, deliver_job_name
    from herald.queue import JobQueue, JobRequest, load_jobs

    redis = Redis.from_url(REDIS_URL)
    queue = JobQueue(redis, load_jobs())
    channels = ("email", "sms", "push", "whatsapp")
    requests = [
        JobRequest(deliver_job_name(channels[i % 4]), job, job_id=deliver_job_id(job[0], 1))
        for i, job in enumerate(jobs)
    ]
    try:
        await queue.enqueue_many(requests[:WARMUP])
        clock = time.perf_counter()
        await queue.enqueue_many(requests[WARMUP:])
        return time.perf_counter() - clock
    finally:
        await redis.aclose()


async def _arq(jobs: list[tuple[str, int]], in_flight: int) -> float:
    from arq import create_pool
    from arq.connections import RedisSettings

    pool = await create_pool(RedisSettings.from_dsn(REDIS_URL))
    try:
        calls: list[Callable[[], Awaitable[Any]]] = [
            (lambda job=job: pool.enqueue_job("deliver", *job, _queue_name="arq:queue:bench"))
            for job in jobs
        ]
        return await _timed(calls[:WARMUP], calls[WARMUP:], in_flight)
    finally:
        await pool.aclose()


async def _saq(jobs: list[tuple[str, int]], in_flight: int) -> float:
    from saq import Queue

    queue = Queue.from_url(REDIS_URL, name="bench")
    await queue.connect()
    try:
        calls: list[Callable[[], Awaitable[Any]]] = [
            (lambda job=job: queue.enqueue("deliver", notification_id=job[0], attempt=job[1]))
            for job in jobs
        ]
        return await _timed(calls[:WARMUP], calls[WARMUP:], in_flight)
    finally:
        await queue.disconnect()
