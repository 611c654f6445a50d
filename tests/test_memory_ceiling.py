"""MAX_MEMORY_MB: a process that grows past it drains as on SIGTERM and exits to be restarted."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis.asyncio as aioredis

from herald.memory import EXIT_STATUS
from herald.queue import JobQueue, registry
from tests.conftest import REDIS_URL
from tests.guarantees.conftest import wait_all_sent
from tests.notifications.conftest import auth, new_key
from tests.support.process import HeraldProcess

pytestmark = [pytest.mark.process, pytest.mark.slow]

Start = Callable[..., HeraldProcess]


async def test_growing_past_the_ceiling_drains_exits_and_loses_nothing(herald: Start) -> None:
    key = await new_key("ceiling")
    process = herald(MAX_MEMORY_MB="400")
    later = (datetime.now(UTC) + timedelta(seconds=4)).isoformat()
    items = [{"channel": "sms", "to": "+447911123456", "body": f"now {i}"} for i in range(10)]
    items += [
        {"channel": "sms", "to": "+447911123456", "body": f"later {i}", "send_at": later}
        for i in range(10)
    ]
    accepted = httpx.post(
        process.url + "/v1/notifications/batch",
        json={"notifications": items},
        headers=auth(key),
        timeout=30,
    )
    assert accepted.status_code == 202, accepted.text
    async with aioredis.Redis.from_url(REDIS_URL) as client:
        await JobQueue(client, registry).enqueue("test.hog", 500)
    status = await asyncio.to_thread(process.wait, 60)
    logs = process.logs()
    assert status == EXIT_STATUS, logs[-3000:]
    assert "memory.ceiling_exceeded" in logs
    assert "workers.draining" in logs  # the same drain as SIGTERM
    # a fresh process (what the supervisor starts) delivers everything that was accepted
    again = herald()
    wait_all_sent(again, key, 20, timeout=60)


async def test_a_ceiling_below_the_start_up_size_is_refused(herald: Start) -> None:
    process = herald(wait_ready=False, MAX_MEMORY_MB="64")
    status = await asyncio.to_thread(process.wait, 60)
    assert status == 2, process.logs()[-3000:]
    assert "MAX_MEMORY_MB=64 is below this process's size at start-up" in process.logs()
