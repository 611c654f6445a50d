"""Provider rate limits shared by every replica, kept in Redis (GCRA, no burst).

`EMAIL_RATE_LIMIT=10/s` paces sends one every 100 ms across all processes, so no one-second
window sees more than the limit, give or take the send on the window's edge.

Pacing takes two steps, because what the provider counts is when a request reaches it:

1. Before the claim, `reserve` books the channel's next free send time in Redis. A job whose
   slot is more than two seconds away books nothing and is deferred (arq `Retry`): it has not
   claimed its notification yet, so no attempt is spent.
2. After the claim, right before the provider call, `wait_for` sleeps until that time. If the
   time has already passed by more than the slack (the claim waited on a slow Postgres, the
   event loop was busy), the job books a fresh slot instead of sending late: late sends would
   arrive together, on top of the sends that are on time.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis

from herald import metrics
from herald.channels import TransientError
from herald.config import RateLimit, Settings
from herald.queue import Retry

log = structlog.get_logger()

# A slot further away than this is not booked: the job is deferred instead of holding a worker.
_MAX_INLINE_WAIT_SECONDS = 2.0

# A send may go this much after its slot (or one interval, if longer) before it needs a new one.
_MIN_SLACK_SECONDS = 0.05

# Books the next send time if it is at most ARGV[2] ms away; returns {booked, wait in ms}.
_RESERVE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + tonumber(now_parts[2]) / 1000
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now
if wait > max_wait then return {0, tostring(wait)} end
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', math.ceil(wait + interval) + 1000)
return {1, tostring(wait)}
"""


@dataclass(frozen=True, slots=True)
class Slot:
    """A booked send time on one channel, on this process's monotonic clock."""

    channel: str
    due: float


class RateLimiter:
    def __init__(self, redis: Redis, settings: Settings, providers: dict[str, str]) -> None:
        self._script = redis.register_script(_RESERVE)
        self._limits: dict[str, tuple[str, RateLimit]] = {}
        for channel, provider in providers.items():
            limit = settings.rate_limit_for(channel)
            if limit is not None:
                self._limits[channel] = (f"herald:ratelimit:{channel}:{provider}", limit)

    async def reserve(self, channel: str) -> Slot | None:
        """Book the next send time on `channel`; None if it has no limit.

        Raises `Retry` to defer the job when the next free time is too far away.
        """
        if channel not in self._limits:
            return None
        booked, wait = await self._book(channel, _MAX_INLINE_WAIT_SECONDS)
        if wait > 0:
            metrics.rate_limit_waits.labels(channel).inc()
        if booked is None:
            raise Retry(defer=wait)
        return booked

    async def wait_for(self, slot: Slot, deadline: float) -> None:
        """Return at the slot's time; book a new one if it went by while the job was busy.

        `deadline` (monotonic) is when the job must have sent. Raises `TransientError` if no
        slot is free before then, so the attempt is retried later.
        """
        _, limit = self._limits[slot.channel]
        slack = max(limit.period / limit.limit, _MIN_SLACK_SECONDS)
        while True:
            now = time.monotonic()
            if now - slot.due > slack:  # before the sleep, or woken up late
                log.info("ratelimit.slot_missed", late_seconds=round(now - slot.due, 3))
                booked, wait = await self._book(slot.channel, deadline - now)
                if booked is None:
                    raise TransientError(
                        "rate limit: no free send slot before the job's deadline",
                        retry_after=wait,
                    )
                slot = booked
            delay = slot.due - time.monotonic()
            if delay <= 0:
                return
            await asyncio.sleep(delay)

    async def _book(self, channel: str, max_wait: float) -> tuple[Slot | None, float]:
        """Book a slot at most `max_wait` seconds away: (the slot or None, the wait in seconds)."""
        key, limit = self._limits[channel]
        interval_ms = limit.period * 1000 / limit.limit
        booked, wait_ms = await self._script(keys=[key], args=[interval_ms, max_wait * 1000])
        wait = float(wait_ms) / 1000
        if not int(booked):
            return None, wait
        return Slot(channel, time.monotonic() + wait), wait
