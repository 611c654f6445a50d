"""What every managed-infrastructure test shows through a real `herald serve`: a notification
accepted and sent, its events on the live stream (Redis pub/sub), and a rate limit held."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest
import websockets

from tests.api.live.test_replicas_and_outages import until_sent
from tests.guarantees.conftest import FAST_RECOVERY, count_by_status, submit, wait_all_sent
from tests.guarantees.test_rate_limit import busiest_second, rate_limit_waits
from tests.notifications.conftest import auth
from tests.support.process import HeraldProcess
from tests.support.standin import TwilioStandIn

RATE = 10  # sends per second
COUNT = 15  # a second and a half at that rate


@pytest.fixture
def standin() -> Iterator[TwilioStandIn]:
    server = TwilioStandIn().start()
    yield server
    server.stop()


def managed_env(standin: TwilioStandIn, **env: str) -> dict[str, str]:
    return {
        **FAST_RECOVERY,
        **standin.env(),
        "SMS_RATE_LIMIT": f"{RATE}/s",
        "STREAM_HEARTBEAT_SECONDS": "0.5",
        **env,
    }


async def exercise(process: HeraldProcess, key: str, standin: TwilioStandIn) -> None:
    """Delivery, the live feed and the rate limit, all through `process`'s Redis and Postgres."""
    url = process.url.replace("http://", "ws://") + "/v1/notifications/stream"
    async with websockets.connect(url, additional_headers=auth(key)) as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert first["type"] in ("heartbeat", "event"), first
        await until_sent(ws, process, key)

    before = len(standin.times())
    started = time.monotonic()
    submit(process, key, COUNT, "rate")
    wait_for_sends(standin, before + COUNT, started)
    times = standin.times()[before:]
    assert len(times) == COUNT
    # Unlimited, all 15 would go within a fraction of a second. The slack is the one the
    # guarantees test allows (tests/guarantees/test_rate_limit.py), in sends rather than 10%.
    assert busiest_second(times) <= RATE + 2, times
    assert rate_limit_waits(process) > 0
    # The stand-in counts a send when its request arrives; Herald records the outcome a moment
    # later (outcomes are written in batches), so the last ones may still read `sending` here.
    total = sum(count_by_status(process, key).values())
    wait_all_sent(process, key, total, timeout=30)


def wait_for_sends(standin: TwilioStandIn, total: int, started: float) -> None:
    while len(standin.times()) < total:
        assert time.monotonic() - started < 60, f"{len(standin.times())} of {total} sent"
        time.sleep(0.1)
