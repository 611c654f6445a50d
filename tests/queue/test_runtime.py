"""The worker runtime in this test's event loop: wake-up, queue selection, drain, restart."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis

from herald import metrics
from herald.app import create_app
from herald.queue import JobQueue, Priority, registry
from herald.queue.keys import queue_key
from tests.conftest import DATABASE_URL, REDIS_URL, make_settings, running_app


async def _wait_for(redis: aioredis.Redis, key: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await redis.get(key)
        if value is not None:
            return json.loads(value)  # type: ignore[no-any-return]
        await asyncio.sleep(0.01)
    raise AssertionError(f"{key} never appeared")


@pytest.fixture
async def redis() -> Any:
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def test_in_process_enqueue_wakes_the_worker_without_waiting_for_a_poll(
    redis: aioredis.Redis,
) -> None:
    # With a 5 s poll delay, only a wake-up can start the job within 4 s. The enqueue also
    # publishes on Redis (the cross-process path): the local wake-up is told apart by its count.
    settings = make_settings(poll_delay_seconds=5, worker_queues=["a"])
    local = metrics.worker_wakeups.labels("a", "local")
    async with running_app(settings) as (app, _):
        jobs = app.state.resources.jobs
        started = time.time()
        # the first poll happens at start-up; wait past it so the loop is asleep
        await asyncio.sleep(0.2)
        woken = local._value.get()
        token = uuid.uuid4().hex
        await jobs.enqueue("test.record_a", token)
        assert local._value.get() == woken + 1  # at once, before any pub/sub message arrives
        entry = await _wait_for(redis, f"test:ran:{token}", timeout=4)
    assert entry["pid"] == os.getpid()
    assert entry["started"] - started < 4


async def test_enqueue_with_the_same_job_id_is_a_no_op(redis: aioredis.Redis) -> None:
    jobs = JobQueue(redis, registry)
    assert await jobs.enqueue("test.record_a", "x", job_id="same")
    assert not await jobs.enqueue("test.record_a", "x", job_id="same")
    assert await redis.zcard(queue_key("a")) == 1


async def test_enqueue_many_is_one_call_and_reports_each_job(redis: aioredis.Redis) -> None:
    from herald.queue import JobRequest

    jobs = JobQueue(redis, registry)
    await jobs.enqueue("test.record_a", "x", job_id="exists")
    created = await jobs.enqueue_many(
        [
            JobRequest("test.record_a", ("t1",), job_id="new-1"),
            JobRequest("test.record_a", ("t2",), job_id="exists"),
            JobRequest("test.record_b", ("t3",), job_id="new-2"),
        ]
    )
    assert created == [True, False, True]
    assert await redis.zcard(queue_key("a")) == 2
    assert await redis.zcard(queue_key("b")) == 1


async def test_high_priority_jobs_sort_before_waiting_normal_and_low_ones(
    redis: aioredis.Redis,
) -> None:
    jobs = JobQueue(redis, registry)
    await jobs.enqueue("test.record_a", "low", job_id="low", priority=Priority.LOW)
    await jobs.enqueue("test.record_a", "normal", job_id="normal")
    await jobs.enqueue("test.record_a", "high", job_id="high", priority=Priority.HIGH)
    order = await redis.zrange(queue_key("a"), 0, -1)
    assert order == [b"high", b"normal", b"low"]
    # all three are due now: none is mistaken for a deferred job
    assert await redis.zcount(queue_key("a"), "-inf", int(time.time() * 1000)) == 3


async def test_worker_queues_limits_what_this_process_consumes(redis: aioredis.Redis) -> None:
    settings = make_settings(worker_queues=["a"])
    async with running_app(settings) as (app, _):
        jobs = app.state.resources.jobs
        await jobs.enqueue("test.record_a", "ta")
        await jobs.enqueue("test.record_b", "tb")
        await _wait_for(redis, "test:ran:ta")
        await asyncio.sleep(0.3)
        assert await redis.get("test:ran:tb") is None
    assert await redis.zcard(queue_key("b")) == 1


async def test_unknown_worker_queue_is_refused_at_start_up() -> None:
    settings = make_settings(worker_queues=["a", "nope"])
    with pytest.raises(ValueError, match="WORKER_QUEUES names unknown queues nope; known: a, b"):
        create_app(settings)


async def test_drain_lets_short_jobs_finish_and_requeues_long_ones(
    redis: aioredis.Redis,
) -> None:
    settings = make_settings(worker_queues=["a"], shutdown_grace_seconds=1.5)
    async with running_app(settings) as (app, _):
        jobs = app.state.resources.jobs
        await jobs.enqueue("test.record_a", "short", 0.3, job_id="short")
        await jobs.enqueue("test.record_a", "long", 30, job_id="long")
        await _wait_for(redis, "test:started:short")
        await _wait_for(redis, "test:started:long")
    # the lifespan has drained and closed: the short job finished, the long one is queued again
    assert await redis.get("test:ran:short") is not None
    assert await redis.get("test:ran:long") is None
    assert await redis.zrange(queue_key("a"), 0, -1) == [b"long"]
    assert not await redis.exists("arq:in-progress:long")
    assert await redis.exists("arq:job:long")


async def test_pausing_a_queue_stops_picking_within_a_second_and_resume_restarts_it(
    redis: aioredis.Redis,
) -> None:
    from herald.db.engine import create_session_maker
    from herald.queue.control import live_processes, pause_queue, resume_queue

    settings = make_settings(worker_queues=["a", "b"])
    async with running_app(settings) as (app, _):
        resources = app.state.resources
        session_maker = create_session_maker(resources.engine)
        async with session_maker() as session, session.begin():
            await pause_queue(session, "a", by="test")
        await asyncio.sleep(1.0)
        await resources.jobs.enqueue("test.record_a", "paused")
        await resources.jobs.enqueue("test.record_b", "other")
        await _wait_for(redis, "test:ran:other")
        await asyncio.sleep(1.0)
        assert await redis.get("test:ran:paused") is None
        assert resources.runtime.paused == {"a"}

        processes = await live_processes(redis)
        assert [p.pid for p in processes] == [os.getpid()]
        assert processes[0].queues == ["a", "b"]

        async with session_maker() as session, session.begin():
            await resume_queue(session, "a")
        await _wait_for(redis, "test:ran:paused", timeout=3)
    assert await live_processes(redis) == []


async def test_a_job_enqueued_by_another_process_wakes_the_worker_through_redis(
    redis: aioredis.Redis,
) -> None:
    # A JobQueue of its own stands for another process: no in-process listener hears it.
    settings = make_settings(poll_delay_seconds=5, worker_queues=["a"])
    local = metrics.worker_wakeups.labels("a", "local")
    pubsub = metrics.worker_wakeups.labels("a", "pubsub")
    async with running_app(settings):
        await asyncio.sleep(0.3)  # past the first poll: the loop now sleeps for 5 s
        before = (local._value.get(), pubsub._value.get())
        started = time.time()
        await JobQueue(redis, registry).enqueue("test.record_a", "remote")
        entry = await _wait_for(redis, "test:ran:remote", timeout=4)
        after = (local._value.get(), pubsub._value.get())
    assert entry["started"] - started < 4
    assert after[0] == before[0]
    assert after[1] >= before[1] + 1


async def test_liveness_reports_a_dead_or_wedged_worker_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from herald.queue import runtime as runtime_module
    from herald.queue.worker import HeraldWorker

    settings = make_settings(worker_queues=["a", "b"])
    async with running_app(settings) as (app, client):
        assert (await client.get("/health/live")).status_code == 200
        runtime = app.state.resources.runtime

        # dead: the supervisor task of queue a is gone
        task = runtime.workers["a"]._task
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        response = await client.get("/health/live")
        assert response.status_code == 503
        assert response.json()["detail"] == "worker loops dead or wedged: a"

        # wedged: queue b's loop hangs inside an iteration (as on a Redis call that never returns)
        hang = asyncio.Event()

        async def hung_iteration(self: HeraldWorker) -> None:
            await hang.wait()

        monkeypatch.setattr(runtime_module, "_WEDGED_AFTER_SECONDS", 0.3)
        monkeypatch.setattr(HeraldWorker, "_poll_iteration", hung_iteration)
        runtime.workers["b"].wake("control")
        await asyncio.sleep(0.6)
        response = await client.get("/health/live")
        assert response.json()["detail"] == "worker loops dead or wedged: a, b"
        hang.set()


async def test_a_heartbeat_held_up_by_a_stall_starts_the_trust_in_heartbeats_again() -> None:
    # In a Postgres stall every process's beats wait; when it ends, the others' heartbeats
    # are old. A process whose own beat was held up must not take that for their death: its
    # trust in heartbeats (`beating_since`) starts again, and the reconciler goes by leases
    # until it has beaten on time for RECOVERY_SECONDS.
    import asyncpg

    from herald.notifications.reconciler import _silence_limit
    from tests.support.waiting import eventually

    settings = make_settings(recovery_seconds=4, worker_queues=["a"])  # a beat every 0.8 s
    async with running_app(settings) as (app, _):
        resources = app.state.resources
        runtime = resources.runtime

        async def beating() -> bool:
            return runtime.beating_since is not None

        await eventually(beating, what="the first heartbeat")
        first = runtime.beating_since
        stall = await asyncpg.connect(DATABASE_URL.replace("postgresql+asyncpg", "postgresql"))
        try:
            async with stall.transaction():
                # The process's own row, locked: its next beats wait, as in a stall.
                await stall.execute(
                    "SELECT 1 FROM worker_processes WHERE id = $1 FOR UPDATE", runtime.process_id
                )
                stalled_at = time.monotonic()
                await asyncio.sleep(2.0)  # the stall itself: longer than two beat intervals
        finally:
            await stall.close()

        async def trusted_again() -> bool:
            return runtime.beating_since is not None and runtime.beating_since > stalled_at

        await eventually(trusted_again, timeout=5, what="the trust to start again")
        assert runtime.beating_since > first
        assert _silence_limit(resources) is None  # leases only, for RECOVERY_SECONDS and a beat
