"""Enqueueing jobs: the only way the rest of Herald puts work on a queue.

`JobQueue.enqueue_many` writes any number of jobs in one Redis round trip (one Lua script
call). A job whose id already exists (queued, running, or kept as a result) is left alone, so
enqueueing the same id twice is a no-op: callers encode what makes a job unique in its id.
Listeners registered with `add_listener` hear about every queue that received a job due now
from this process, and the same script publishes the queue on `WAKE_CHANNEL` for the other
processes: workers everywhere start at once instead of waiting for their next poll.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import uuid4

from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from redis.asyncio import Redis

from herald import metrics
from herald.queue.keys import WAKE_CHANNEL, Priority, due_score, queue_key
from herald.queue.registry import JobRegistry
from herald.queue.serialization import serialize

# Keep job payloads a day past their due time, as arq does; the reconciler re-enqueues
# anything that outlives that.
_EXPIRES_EXTRA_MS = 86_400_000

_ENQUEUE_LUA = """
-- ARGV: job key prefix, result key prefix, now ms, wake channel,
-- then per job: id, queue key, score, ttl ms, payload.
local created = {}
local woken = {}
local now = tonumber(ARGV[3])
local n = (#ARGV - 4) / 5
for i = 0, n - 1 do
  local base = 5 + i * 5
  local id = ARGV[base]
  if redis.call('EXISTS', ARGV[1] .. id, ARGV[2] .. id) == 0 then
    redis.call('PSETEX', ARGV[1] .. id, ARGV[base + 3], ARGV[base + 4])
    redis.call('ZADD', ARGV[base + 1], ARGV[base + 2], id)
    created[#created + 1] = 1
    if tonumber(ARGV[base + 2]) <= now then woken[ARGV[base + 1]] = true end
  else
    created[#created + 1] = 0
  end
end
for queue, _ in pairs(woken) do redis.call('PUBLISH', ARGV[4], queue) end
return created
"""


@dataclass(frozen=True, slots=True)
class JobRequest:
    """One job to enqueue: the registered job name, its arguments and how to schedule it."""

    function: str
    args: tuple[Any, ...] = ()
    job_id: str = field(default_factory=lambda: uuid4().hex)
    defer_until: datetime | None = None
    priority: Priority = Priority.NORMAL


def now_ms() -> int:
    return int(time.time() * 1000)


class JobQueue:
    """Puts jobs on Herald's queues through a Redis client the caller owns."""

    def __init__(self, redis: Redis, registry: JobRegistry) -> None:
        self._redis = redis
        self._registry = registry
        self._script = redis.register_script(_ENQUEUE_LUA)
        self._listeners: list[Callable[[str], None]] = []

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call `listener(queue)` after jobs due now were enqueued on `queue`."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[str], None]) -> None:
        self._listeners.remove(listener)

    async def enqueue(
        self,
        function: str,
        *args: Any,
        job_id: str | None = None,
        defer_until: datetime | None = None,
        priority: Priority = Priority.NORMAL,
    ) -> bool:
        """Enqueue one job; False if a job with this id already exists."""
        request = JobRequest(function, args, job_id or uuid4().hex, defer_until, priority)
        (created,) = await self.enqueue_many([request])
        return created

    async def enqueue_many(self, requests: Sequence[JobRequest]) -> list[bool]:
        """Enqueue jobs in one round trip; returns, per job, whether it was created."""
        if not requests:
            return []
        now = now_ms()
        argv: list[Any] = [job_key_prefix, result_key_prefix, now, WAKE_CHANNEL]
        queues: list[str] = []
        woken: set[str] = set()
        for request in requests:
            definition = self._registry.get(request.function)
            if (
                request.defer_until is not None
                and (deferred := int(request.defer_until.timestamp() * 1000)) > now
            ):
                score = deferred
            else:
                score = due_score(now, request.priority)
                woken.add(definition.queue)
            payload = serialize_job(
                request.function, request.args, {}, None, now, serializer=serialize
            )
            ttl = max(score - now, 0) + _EXPIRES_EXTRA_MS
            argv += [request.job_id, queue_key(definition.queue), score, ttl, payload]
            queues.append(definition.queue)
        created = [bool(flag) for flag in await self._script(args=argv)]
        for request, queue, was_created in zip(requests, queues, created, strict=True):
            if was_created:
                metrics.jobs_enqueued.labels(queue, request.function).inc()
        for queue in woken:
            for listener in self._listeners:
                listener(queue)
        return created
