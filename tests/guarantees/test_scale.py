"""Several replicas: each notification sent exactly once, rate limits held across replicas,
and one Idempotency-Key under 50 concurrent requests."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import httpx
import pytest

from tests.guarantees.conftest import FAST_RECOVERY, submit, wait_all_sent
from tests.notifications.conftest import auth, new_key
from tests.support.process import HeraldProcess
from tests.support.standin import TwilioStandIn

pytestmark = [pytest.mark.process, pytest.mark.slow]

Start = Callable[..., HeraldProcess]


def sent_by(process: HeraldProcess) -> float:
    text = process.get("/metrics").text
    pattern = re.compile(
        r'^herald_notifications_total\{channel="sms",outcome="sent",provider="twilio"\} (\S+)$',
        re.M,
    )
    match = pattern.search(text)
    return float(match.group(1)) if match else 0.0


async def test_three_replicas_send_3000_notifications_exactly_once(
    herald: Start, standin: TwilioStandIn
) -> None:
    key = await new_key("replicas")
    replicas = [herald(**FAST_RECOVERY, **standin.env()) for _ in range(3)]
    ids: list[str] = []
    for index, replica in enumerate(replicas):
        ids += submit(replica, key, 1000, f"r{index}-")
    wait_all_sent(replicas[0], key, 3000, timeout=180)
    assert standin.sends() == dict.fromkeys(ids, 1)
    split = [sent_by(replica) for replica in replicas]
    print(f"\nsplit of 3000 deliveries over 3 replicas: {split}")
    assert sum(split) == 3000
    assert all(count > 0 for count in split)


async def test_a_rate_limit_holds_across_two_replicas(
    herald: Start, standin: TwilioStandIn
) -> None:
    key = await new_key("rate")
    env = {**FAST_RECOVERY, **standin.env(), "SMS_RATE_LIMIT": "20/s"}
    replicas = [herald(**env) for _ in range(2)]
    submit(replicas[0], key, 150, "a")
    submit(replicas[1], key, 150, "b")
    wait_all_sent(replicas[0], key, 300, timeout=120)
    times = standin.times()
    assert len(times) == 300
    busiest = max(sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times))
    print(
        f"\nbusiest one-second window: {busiest} sends (limit 20/s); total {times[-1] - times[0]:.1f}s"
    )
    assert busiest <= 22  # 20 plus 10 %
    waits = [
        float(line.split()[-1])
        for replica in replicas
        for line in replica.get("/metrics").text.splitlines()
        if line.startswith('herald_rate_limit_waits_total{channel="sms"}')
    ]
    assert sum(waits) > 0


async def test_fifty_concurrent_requests_with_one_idempotency_key_create_one_notification(
    herald: Start, standin: TwilioStandIn
) -> None:
    key = await new_key("idem")
    process = herald(**FAST_RECOVERY, **standin.env())
    body = {"channel": "sms", "to": "+447911123456", "body": "once"}
    headers = {**auth(key), "Idempotency-Key": "checkout-7"}
    async with httpx.AsyncClient(base_url=process.url, timeout=30) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/notifications", json=body, headers=headers) for _ in range(50))
        )
    statuses = sorted({r.status_code for r in responses})
    assert set(statuses) <= {202, 409}, statuses
    ids = {r.json()["id"] for r in responses if r.status_code == 202}
    assert len(ids) == 1
    wait_all_sent(process, key, 1, timeout=30)
    await asyncio.sleep(1)
    assert standin.sends() == dict.fromkeys(ids, 1)
