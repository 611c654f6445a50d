"""Several replicas: each notification sent exactly once, and one Idempotency-Key under 50
concurrent requests. (Rate limits across replicas: test_rate_limit.py.)"""

from __future__ import annotations

import asyncio
import re
import time
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


# About 30 s on a quiet machine; four processes on two busy cores can take several minutes.
@pytest.mark.timeout(300)
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
    # A row is `sent` when its outcome's batch commits; the job counts it a moment later.
    deadline = time.monotonic() + 10
    split = [sent_by(replica) for replica in replicas]
    while sum(split) < 3000 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        split = [sent_by(replica) for replica in replicas]
    print(f"\nsplit of 3000 deliveries over 3 replicas: {split}")
    assert sum(split) == 3000
    assert all(count > 0 for count in split)


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
