"""Provider rate limits shared by every replica, kept in Redis (GCRA, no burst).

`EMAIL_RATE_LIMIT=10/s` paces sends one every 100 ms across all processes, so no one-second
window sees more than the limit (give or take the one send on the window's edge). A job over
the limit waits when the wait is short, or is deferred (arq `Retry`) when it is long; either
way it has not claimed its notification yet, so no attempt is spent.
"""

from __future__ import annotations

import asyncio

import structlog
from redis.asyncio import Redis

from herald import metrics
from herald.config import RateLimit, Settings
from herald.queue import Retry

log = structlog.get_logger()

# Waits up to this long happen in the job; longer ones give the slot back and defer the job.
_MAX_INLINE_WAIT_SECONDS = 2.0

_GCRA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + tonumber(now_parts[2]) / 1000
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now
if wait > 0 then return tostring(wait) end
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', math.ceil(interval) + 1000)
return '0'
"""


class RateLimiter:
    def __init__(self, redis: Redis, settings: Settings, providers: dict[str, str]) -> None:
        self._redis = redis
        self._script = redis.register_script(_GCRA)
        self._limits: dict[str, tuple[str, RateLimit]] = {}
        for channel, provider in providers.items():
            limit = settings.rate_limit_for(channel)
            if limit is not None:
                self._limits[channel] = (f"herald:ratelimit:{channel}:{provider}", limit)

    async def acquire(self, channel: str) -> None:
        """Return when a send on `channel` is allowed, or raise `Retry` to defer the job."""
        entry = self._limits.get(channel)
        if entry is None:
            return
        key, limit = entry
        interval_ms = limit.period * 1000 / limit.limit
        waited = False
        while True:
            wait_ms = float(await self._script(keys=[key], args=[interval_ms]))
            if wait_ms <= 0:
                return
            if not waited:
                metrics.rate_limit_waits.labels(channel).inc()
                waited = True
            if wait_ms / 1000 > _MAX_INLINE_WAIT_SECONDS:
                raise Retry(defer=wait_ms / 1000)
            await asyncio.sleep(wait_ms / 1000)
