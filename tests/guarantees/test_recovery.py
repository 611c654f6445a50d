"""Recovery after a crash in seconds: the deliveries of a process whose heartbeat stopped are
taken back within RECOVERY_SECONDS, not after their lease; a live process keeps its long jobs."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from tests.guarantees.conftest import submit, wait_all_sent
from tests.notifications.conftest import auth, new_key
from tests.support.process import HeraldProcess
from tests.support.standin import TwilioStandIn

pytestmark = [pytest.mark.process, pytest.mark.slow]

Start = Callable[..., HeraldProcess]

# A lease of 65 s, as by default: anything redelivered well before that came from the heartbeat.
LONG_LEASE = {"JOB_TIMEOUT_SECONDS": "60", "LEASE_MARGIN_SECONDS": "5"}
# The full reconcile pass runs only at start-up (before heartbeats are trusted): what takes the
# deliveries back is the recovery step on its own, every fifth of RECOVERY_SECONDS.
FAST = {"RECOVERY_SECONDS": "4", "RECONCILE_INTERVAL_SECONDS": "600", "RETRY_BASE_SECONDS": "0.1"}


async def test_a_killed_process_s_deliveries_go_out_again_long_before_their_lease(
    herald: Start, standin: TwilioStandIn
) -> None:
    key = await new_key("recovery")
    standin.delay = 3.0
    first = herald(**LONG_LEASE, **FAST, **standin.env(), QUEUE_CONCURRENCY="sms=20")
    ids = submit(first, key, 20, "crash")
    deadline = time.monotonic() + 20
    while len(standin.received) < 20:  # every one claimed and at the provider
        assert time.monotonic() < deadline, len(standin.received)
        time.sleep(0.02)
    first.kill()  # SIGKILL: no drain, no end of heartbeat; its 20 rows stay `sending`
    standin.delay = 0.0
    killed_at = time.monotonic()
    second = herald(**LONG_LEASE, **FAST, **standin.env())
    wait_all_sent(second, key, 20, timeout=40)
    assert time.monotonic() - killed_at < 45  # the lease alone would have taken 65 s
    assert set(standin.sends()) == set(ids)
    details = [
        event["detail"]
        for notification_id in ids
        for event in second.get(f"/v1/notifications/{notification_id}", headers=auth(key)).json()[
            "events"
        ]
    ]
    assert any("its process stopped beating" in (d or "") for d in details)


async def test_a_live_process_keeps_its_long_deliveries(
    herald: Start, standin: TwilioStandIn
) -> None:
    key = await new_key("long-jobs")
    standin.delay = 8.0  # twice RECOVERY_SECONDS
    process = herald(**LONG_LEASE, **FAST, **standin.env())
    ids = submit(process, key, 3, "slow")
    wait_all_sent(process, key, 3, timeout=40)
    assert standin.sends() == dict.fromkeys(ids, 1)
    for notification_id in ids:
        events = httpx.get(
            f"{process.url}/v1/notifications/{notification_id}", headers=auth(key), timeout=5
        ).json()["events"]
        assert [e["status"] for e in events] == ["queued", "sending", "sent"]
