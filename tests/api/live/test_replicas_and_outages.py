"""Across replicas and outages: a subscriber on replica A sees the deliveries replica B makes,
and keeps seeing them after its Redis is killed and restarted (no silent stall)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import base_env
from tests.notifications.conftest import auth, new_key
from tests.support.process import HeraldProcess
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.process, pytest.mark.slow]

EMAIL = {"channel": "email", "to": "jane@example.com", "subject": "Hi", "body": "Hello"}


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


def send(process: HeraldProcess, key: str) -> str:
    response = httpx.post(f"{process.url}/v1/notifications", json=EMAIL, headers=auth(key))
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def until_sent(ws: Any, process: HeraldProcess, key: str, timeout: float = 20) -> str:
    """Send through `process` until a notification's `sent` event arrives on `ws` (the first
    sends may fall in the resubscription's gap; that is what sequences are for)."""
    deadline = time.monotonic() + timeout
    ids: set[str] = set()
    while time.monotonic() < deadline:
        ids.add(send(process, key))
        try:
            async with asyncio.timeout(2):
                while True:
                    message = json.loads(await ws.recv())
                    if message["type"] == "event" and message["status"] == "sent":
                        assert message["notification_id"] in ids
                        return str(message["notification_id"])
        except TimeoutError:
            continue
    raise AssertionError("no event reached the subscriber")


async def test_a_subscriber_on_a_sees_bs_deliveries_across_a_redis_restart(
    own_redis: RedisServer,
) -> None:
    env = {**base_env(), "REDIS_URL": own_redis.url, "RETRY_BASE_SECONDS": "0.05"}
    a = HeraldProcess({**env, "ENABLE_WORKERS": "false", "STREAM_HEARTBEAT_SECONDS": "0.3"})
    b = HeraldProcess(env)
    a.start()
    b.start()
    try:
        key = await new_key("replicas")
        url = a.url.replace("http://", "ws://") + "/v1/notifications/stream"
        async with websockets.connect(url, additional_headers=auth(key)) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "heartbeat"
            await until_sent(ws, b, key)  # B delivered it; A's subscriber saw it

            own_redis.stop()
            a.wait_for("/health/ready", status=503, timeout=10)
            own_redis.start()
            a.wait_for("/health/ready", timeout=15)
            b.wait_for("/health/ready", timeout=15)
            await until_sent(ws, b, key)  # events flow again, on the same open stream
        assert "events.resubscribing" in a.logs()
    finally:
        a.stop()
        b.stop()
