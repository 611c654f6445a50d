"""`herald serve` as a subprocess: start-up, roles, SIGTERM drain and a Redis restart."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis as sync_redis
import redis.asyncio as aioredis

from herald.queue import JobQueue, registry
from herald.queue.keys import queue_key
from tests.conftest import REDIS_URL
from tests.support.process import HeraldProcess
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.process

Start = Callable[..., HeraldProcess]


def enqueue(url: str, function: str, *args: Any, job_id: str | None = None) -> None:
    async def go() -> None:
        client = aioredis.Redis.from_url(url)
        try:
            await JobQueue(client, registry).enqueue(function, *args, job_id=job_id)
        finally:
            await client.aclose()

    asyncio.run(go())


def wait_key(client: sync_redis.Redis, key: str, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = client.get(key)
        if value is not None:
            return json.loads(value)  # type: ignore[no-any-return]
        time.sleep(0.02)
    raise AssertionError(f"{key} never appeared")


def test_serve_is_live_ready_and_runs_jobs_in_its_own_process(
    herald: Start, sync_redis: sync_redis.Redis
) -> None:
    started = time.monotonic()
    process = herald()
    process.wait_for("/health/ready")
    assert time.monotonic() - started < 15
    live = process.get("/health/live")
    assert live.status_code == 200
    workers = live.json()["workers"]
    assert {"a", "b"} <= {w["queue"] for w in workers}
    assert all(w["alive"] and w["state"] == "running" for w in workers)
    assert process.get("/health/ready").json()["checks"] == {
        "postgres": "ok",
        "redis": "ok",
        "draining": False,
    }
    assert process.get("/metrics").status_code == 200
    token = uuid.uuid4().hex
    enqueue(REDIS_URL, "test.record_a", token)
    entry = wait_key(sync_redis, f"test:ran:{token}")
    assert process.proc is not None
    assert entry["pid"] == process.proc.pid
    response = process.get("/health/live", headers={"X-Request-ID": "trace-123"})
    assert response.headers["x-request-id"] == "trace-123"


def test_worker_only_process_serves_health_and_metrics_only_and_runs_jobs(
    herald: Start, sync_redis: sync_redis.Redis
) -> None:
    process = herald(ENABLE_API="false")
    for path in ("/health/live", "/health/ready", "/metrics"):
        assert process.get(path).status_code == 200, path
    for path in ("/v1/notifications", "/schema", "/schema/openapi.json", "/dashboard"):
        response = process.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/problem+json")
    token = uuid.uuid4().hex
    enqueue(REDIS_URL, "test.record_b", token)
    assert wait_key(sync_redis, f"test:ran:{token}")["pid"] == process.proc.pid  # type: ignore[union-attr]


def test_api_only_process_leaves_jobs_to_a_worker_only_process(
    herald: Start, sync_redis: sync_redis.Redis
) -> None:
    api = herald(ENABLE_WORKERS="false")
    assert api.get("/health/live").json()["workers"] == []
    token = uuid.uuid4().hex
    enqueue(REDIS_URL, "test.record_a", token)
    time.sleep(0.5)
    assert sync_redis.get(f"test:ran:{token}") is None
    worker = herald(ENABLE_API="false")
    assert wait_key(sync_redis, f"test:ran:{token}")["pid"] == worker.proc.pid  # type: ignore[union-attr]


def test_worker_queues_picks_the_queues_consumed(
    herald: Start, sync_redis: sync_redis.Redis
) -> None:
    process = herald(WORKER_QUEUES="a")
    assert [w["queue"] for w in process.get("/health/live").json()["workers"]] == ["a"]
    enqueue(REDIS_URL, "test.record_a", "qa")
    enqueue(REDIS_URL, "test.record_b", "qb")
    wait_key(sync_redis, "test:ran:qa")
    time.sleep(0.5)
    assert sync_redis.get("test:ran:qb") is None
    assert sync_redis.zrange(queue_key("b"), 0, -1) != []


def test_unknown_worker_queue_stops_start_up_with_one_line(herald: Start) -> None:
    process = herald(wait_ready=False, WORKER_QUEUES="a,nope")
    assert process.wait(timeout=30) == 2
    assert "herald: invalid settings: WORKER_QUEUES names unknown queues nope" in process.logs()
    assert "Traceback" not in process.logs()


def test_sigterm_drains_running_jobs_and_requeues_what_outlives_the_grace(
    herald: Start, sync_redis: sync_redis.Redis
) -> None:
    grace = 3.0
    process = herald(SHUTDOWN_GRACE_SECONDS=str(grace), WORKER_QUEUES="a")
    for index in range(3):
        enqueue(REDIS_URL, "test.record_a", f"short{index}", 1.0, job_id=f"short{index}")
    enqueue(REDIS_URL, "test.record_a", "long", 60, job_id="long")
    for token in ("short0", "short1", "short2", "long"):
        wait_key(sync_redis, f"test:started:{token}")
    signalled = time.monotonic()
    process.signal(signal.SIGTERM)
    ready = process.wait_for("/health/ready", status=503, timeout=2)
    assert "draining" in ready.json()["detail"]
    assert process.get("/health/live").status_code == 200  # still alive while draining
    process.wait(timeout=grace + 10)
    elapsed = time.monotonic() - signalled
    assert elapsed < grace + 8, f"took {elapsed:.1f}s to exit"
    for index in range(3):
        assert sync_redis.get(f"test:ran:short{index}") is not None
    # the long job was cancelled and is back on its queue, ready for another process
    assert sync_redis.get("test:ran:long") is None
    assert sync_redis.zrange(queue_key("a"), 0, -1) == [b"long"]
    assert not sync_redis.exists("arq:in-progress:long")
    assert "worker.jobs_requeued" in process.logs()
    # and another process picks it up
    herald(WORKER_QUEUES="a")
    wait_key(sync_redis, "test:started:long")


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


def test_worker_loops_recover_from_a_redis_restart(herald: Start, own_redis: RedisServer) -> None:
    process = herald(REDIS_URL=own_redis.url, WORKER_QUEUES="a", WORKER_RESTART_MAX_SECONDS="1")
    process.wait_for("/health/ready")
    client = sync_redis.Redis.from_url(own_redis.url)
    enqueue(own_redis.url, "test.record_a", "before")
    wait_key(client, "test:ran:before")

    own_redis.stop()
    body = process.wait_for("/health/ready", status=503, timeout=10).json()
    assert body["checks"]["redis"].startswith("failing")
    assert body["checks"]["postgres"] == "ok"
    assert process.get("/health/live").status_code == 200  # liveness never checks Redis
    time.sleep(1.5)  # let the worker loop fail and back off at least once

    own_redis.start()
    process.wait_for("/health/ready", timeout=15)
    enqueue(own_redis.url, "test.record_a", "after")
    entry = wait_key(client, "test:ran:after", timeout=15)
    assert entry["pid"] == process.proc.pid  # type: ignore[union-attr]
    assert "worker.restarting" in process.logs()
    restarts = [
        line
        for line in process.get("/metrics").text.splitlines()
        if line.startswith('herald_worker_restarts_total{queue="a"}')
    ]
    assert restarts
    assert float(restarts[0].split()[-1]) >= 1
    client.close()


def test_start_up_warns_when_redis_may_evict_queued_jobs(herald: Start) -> None:
    evicting = RedisServer("--maxmemory-policy", "allkeys-lru").start()
    try:
        process = herald(REDIS_URL=evicting.url, WORKER_QUEUES="a")
        process.stop()
    finally:
        evicting.stop()
    warnings = [
        json.loads(line)
        for line in process.logs().splitlines()
        if '"redis.eviction_enabled"' in line
    ]
    assert len(warnings) == 1
    assert warnings[0]["maxmemory_policy"] == "allkeys-lru"
    assert warnings[0]["level"] == "warning"
