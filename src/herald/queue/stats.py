"""Queue gauges read from Redis at scrape time: one round trip per queue, briefly cached.

Depth counts due jobs not yet started, in progress counts due jobs some worker holds, deferred
counts jobs waiting for a later time, and the oldest age is how long the oldest waiting job
has been due (undoing the priority band offsets, see `keys.py`).
"""

from __future__ import annotations

import asyncio
import time

import structlog
from arq.constants import in_progress_key_prefix
from redis.asyncio import Redis

from herald import metrics
from herald.queue.keys import BAND_MS, queue_key

log = structlog.get_logger()

_CACHE_SECONDS = 2.0
# Counting in-progress jobs looks at the head of the queue only; a deeper backlog is
# certainly not running (running jobs are at most the replicas' total concurrency).
_SCAN_LIMIT = 5000

_STATS_LUA = """
-- KEYS[1] queue; ARGV: now ms, scan limit, in-progress prefix, band ms
local now = tonumber(ARGV[1])
local band = tonumber(ARGV[4])
local due = redis.call('ZCOUNT', KEYS[1], '-inf', now)
local deferred = redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
local head = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, ARGV[2])
local running = 0
local oldest = -1
for i = 1, #head, 2 do
  if redis.call('EXISTS', ARGV[3] .. head[i]) == 1 then
    running = running + 1
  else
    local score = tonumber(head[i + 1])
    local due_at = score
    if score <= now - 1.5 * band then due_at = score + 2 * band
    elseif score <= now - 0.5 * band then due_at = score + band end
    if oldest < 0 or due_at < oldest then oldest = due_at end
  end
end
return {due - running, deferred, running, tostring(oldest)}
"""


class QueueStats:
    def __init__(self, redis: Redis, queues: list[str]) -> None:
        self._redis = redis
        self._queues = queues
        self._script = redis.register_script(_STATS_LUA)
        self._fresh_until = 0.0
        self._lock = asyncio.Lock()

    async def collect(self) -> None:
        """Refresh the queue gauges unless they were read within the last two seconds."""
        async with self._lock:
            if time.monotonic() < self._fresh_until:
                return
            now = int(time.time() * 1000)
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for queue in self._queues:
                        await self._script(
                            keys=[queue_key(queue)],
                            args=[now, _SCAN_LIMIT, in_progress_key_prefix, BAND_MS],
                            client=pipe,
                        )
                    results = await pipe.execute()
            except Exception as exc:  # a scrape must still answer while Redis is down
                log.warning("metrics.queue_stats_failed", error=f"{type(exc).__name__}: {exc}")
                return
            for queue, (waiting, deferred, running, oldest) in zip(
                self._queues, results, strict=True
            ):
                metrics.queue_depth.labels(queue).set(waiting)
                metrics.queue_deferred.labels(queue).set(deferred)
                metrics.queue_in_progress.labels(queue).set(running)
                age = max(now - float(oldest), 0) / 1000 if float(oldest) >= 0 else 0.0
                metrics.queue_oldest_age.labels(queue).set(age)
            self._fresh_until = time.monotonic() + _CACHE_SECONDS
