"""The rate limiter's booking and pacing, against the real Redis (database 15).

The end-to-end view, counted at a provider stand-in, is tests/guarantees/test_rate_limit.py.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from herald.channels import TransientError
from herald.notifications.ratelimit import RateLimiter
from herald.queue import Retry
from tests.conftest import REDIS_URL, make_settings


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


def limiter(redis: Redis, rate: str) -> RateLimiter:
    return RateLimiter(redis, make_settings(sms_rate_limit=rate), {"sms": "twilio"})


async def test_a_channel_without_a_limit_books_nothing(redis: Redis) -> None:
    assert await limiter(redis, "10/s").reserve("email") is None


async def test_slots_are_booked_one_interval_apart(redis: Redis) -> None:
    sms = limiter(redis, "10/s")
    slots = [await sms.reserve("sms") for _ in range(5)]
    dues = [slot.due for slot in slots if slot is not None]
    gaps = [later - earlier for earlier, later in itertools.pairwise(dues)]
    assert len(dues) == 5
    assert all(0.05 < gap < 0.15 for gap in gaps), gaps  # 0.1 s, give or take a round trip


async def test_a_slot_more_than_two_seconds_away_defers_the_job_without_booking(
    redis: Redis,
) -> None:
    sms = limiter(redis, "1/s")
    for _ in range(3):  # due now, in 1 s and in 2 s
        await sms.reserve("sms")
    with pytest.raises(Retry) as deferred:
        await sms.reserve("sms")
    first_defer = deferred.value.defer_score
    assert first_defer is not None
    assert 2500 < first_defer <= 3000  # milliseconds
    with pytest.raises(Retry) as again:  # nothing was booked: the next free time is unchanged
        await sms.reserve("sms")
    assert again.value.defer_score is not None
    assert abs(again.value.defer_score - first_defer) < 500  # booking would have made it 4 s


async def test_a_missed_slot_is_replaced_by_the_next_free_one_instead_of_sending_late(
    redis: Redis,
) -> None:
    sms = limiter(redis, "10/s")
    first = await sms.reserve("sms")
    await sms.reserve("sms")  # +100 ms
    await sms.reserve("sms")  # +200 ms
    assert first is not None
    await asyncio.sleep(0.15)  # the claim took 150 ms: 50 ms past the slack of one interval
    await sms.wait_for(first, deadline=time.monotonic() + 5)
    assert time.monotonic() - first.due > 0.25  # the next free slot is at +300 ms


async def test_a_slot_kept_in_time_is_waited_for_and_not_replaced(redis: Redis) -> None:
    sms = limiter(redis, "10/s")
    await sms.reserve("sms")
    second = await sms.reserve("sms")
    assert second is not None
    await sms.wait_for(second, deadline=time.monotonic() + 5)
    assert time.monotonic() >= second.due - 0.001
    third = await sms.reserve("sms")
    assert third is not None
    # Right after the second slot, not after a replacement booked at +200 ms.
    assert third.due - second.due < 0.15


async def test_no_free_slot_before_the_deadline_is_a_transient_error(redis: Redis) -> None:
    sms = limiter(redis, "1/s")
    first = await sms.reserve("sms")
    await sms.reserve("sms")
    await sms.reserve("sms")
    assert first is not None
    await asyncio.sleep(
        1.1
    )  # missed by more than the one-second interval; the next free time is +3 s
    with pytest.raises(TransientError) as error:
        await sms.wait_for(first, deadline=time.monotonic() + 1)
    assert error.value.retry_after is not None
    assert error.value.retry_after > 1.5
