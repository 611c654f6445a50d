"""The worker's pick-and-claim: one Lua call finds free due jobs and marks them in progress."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import redis.asyncio as aioredis
from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix

from herald.queue import JobQueue, Priority, registry
from herald.queue.worker import HeraldWorker, Picked, build_worker, create_worker_redis
from tests.conftest import REDIS_URL


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def worker() -> AsyncIterator[HeraldWorker]:
    built = build_worker(
        queue="a",
        definitions=registry.for_queue("a"),
        redis=create_worker_redis(REDIS_URL, queue="a", client_name="test-claim"),
        max_jobs=5,
        timeout_seconds=5,
        poll_delay=0.05,
        resources=None,
    )
    yield built
    await built.close()


async def claim(worker: HeraldWorker, free: int) -> list[Picked]:
    return await worker.claim(free)


async def test_claims_free_due_jobs_in_queue_order_and_marks_them_in_progress(
    redis: aioredis.Redis, worker: HeraldWorker
) -> None:
    jobs = JobQueue(redis, registry)
    later = datetime.now(UTC) + timedelta(minutes=5)
    await jobs.enqueue("test.record_a", "n", job_id="normal")
    await jobs.enqueue("test.record_a", "h", job_id="high", priority=Priority.HIGH)
    await jobs.enqueue("test.record_a", "r", job_id="running")
    await jobs.enqueue("test.record_a", "d", job_id="deferred", defer_until=later)
    await redis.set(in_progress_key_prefix + "running", b"1")  # another worker has it

    claimed = await claim(worker, free=5)

    assert [job_id for job_id, *_ in claimed] == [b"high", b"normal"]
    scores = dict(await redis.zrange(worker.queue_name, 0, -1, withscores=True))
    assert [float(score) for _, score, *_ in claimed] == [scores[b"high"], scores[b"normal"]]
    # The claim reads each job's payload and counts its first try, as arq's run_job does.
    for job_id, _, payload, job_try in claimed:
        assert payload == await redis.get(job_key_prefix + job_id.decode())
        assert job_try == 1 == int(await redis.get(retry_key_prefix + job_id.decode()))
    for job_id in (b"high", b"normal"):
        ttl = await redis.pttl(in_progress_key_prefix + job_id.decode())
        assert 0 < ttl <= worker.in_progress_timeout_s * 1000
    assert await claim(worker, free=5) == []  # both are now in progress: nothing to claim


async def test_claims_no_more_than_there_are_free_slots(
    redis: aioredis.Redis, worker: HeraldWorker
) -> None:
    jobs = JobQueue(redis, registry)
    for n in range(4):
        await jobs.enqueue("test.record_a", str(n), job_id=f"job-{n}")
    assert len(await claim(worker, free=3)) == 3
    assert len(await claim(worker, free=3)) == 1


async def test_claimed_jobs_not_started_are_handed_back_at_once(
    redis: aioredis.Redis, worker: HeraldWorker
) -> None:
    jobs = JobQueue(redis, registry)
    await jobs.enqueue("test.record_a", "x", job_id="x")
    await jobs.enqueue("test.record_a", "y", job_id="y")
    claimed = await claim(worker, free=5)
    worker.allow_pick_jobs = False  # the queue was paused while the claim was on its way
    await worker._run_claimed(claimed)
    assert worker.tasks == {}
    assert not await redis.exists(in_progress_key_prefix + "x", in_progress_key_prefix + "y")
    assert len(await claim(worker, free=5)) == 2  # free for the next poll, not in 15 s


async def test_a_dead_workers_pick_frees_within_its_short_lease_and_a_running_job_keeps_it(
    redis: aioredis.Redis,
) -> None:
    lease = 0.6

    def make(name: str) -> HeraldWorker:
        return build_worker(
            queue="a",
            definitions=registry.for_queue("a"),
            redis=create_worker_redis(REDIS_URL, queue="a", client_name=name),
            max_jobs=5,
            timeout_seconds=30,
            poll_delay=0.05,
            resources=SimpleNamespace(redis=redis),
            in_progress_lease=lease,
        )

    jobs = JobQueue(redis, registry)
    await jobs.enqueue("test.record_a", "picked", job_id="picked")
    # A process picks the job, then dies (SIGKILL) before starting it.
    dead = make("test-dead")

    async def die(claimed: list[Picked]) -> None:
        assert [job_id for job_id, *_ in claimed] == [b"picked"]

    dead._run_claimed = die  # type: ignore[method-assign]
    await dead._poll_iteration()
    await dead.close()
    ttl = await redis.pttl(in_progress_key_prefix + "picked")
    assert 0 < ttl <= lease * 1000  # not arq's job timeout + 10 s

    live = make("test-live")
    loop = asyncio.create_task(live.main())
    try:
        await jobs.enqueue("test.record_a", "long", 4 * lease, job_id="long")
        deadline = time.monotonic() + 30
        while not await redis.exists("test:ran:picked"):
            assert time.monotonic() < deadline, "the dead worker's pick was never run"
            await asyncio.sleep(0.05)
        # The long job outlives its lease several times: its worker keeps the key alive.
        while not await redis.exists("test:ran:long"):
            assert time.monotonic() < deadline, "the long job never finished"
            if not await redis.exists(in_progress_key_prefix + "long"):
                started = await redis.exists("test:started:long")
                assert not started or await redis.exists("test:ran:long"), "lease lapsed"
            await asyncio.sleep(0.05)
        assert json.loads(await redis.get("test:ran:long"))["try"] == 1
    finally:
        live.stop()
        await loop
        # A job whose bookkeeping is still being written is running: close() would cancel it.
        await live.wait_idle()
        await live.close()
