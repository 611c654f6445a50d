"""Provider rate limits, measured where they matter: at the provider's door.

The stand-in records the time each request reaches it; the busiest one-second window of those
times is what a provider enforcing `20/s` would see.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import DATABASE_URL
from tests.guarantees.conftest import FAST_RECOVERY, submit, wait_all_sent
from tests.notifications.conftest import new_key
from tests.support.process import HeraldProcess
from tests.support.standin import TwilioStandIn

pytestmark = [pytest.mark.process, pytest.mark.slow]

Start = Callable[..., HeraldProcess]

# 20/s plus 10 %: the send on a window's edge, and a little scheduling noise.
LIMIT = 20
CEILING = 22


def busiest_second(times: list[float]) -> int:
    """The most sends in any one-second window (`times` sorted)."""
    return max(sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times))


def rate_limit_waits(process: HeraldProcess) -> float:
    return sum(
        float(line.split()[-1])
        for line in process.get("/metrics").text.splitlines()
        if line.startswith('herald_rate_limit_waits_total{channel="sms"}')
    )


async def test_a_rate_limit_holds_across_two_replicas(
    herald: Start, standin: TwilioStandIn
) -> None:
    key = await new_key("rate")
    env = {**FAST_RECOVERY, **standin.env(), "SMS_RATE_LIMIT": f"{LIMIT}/s"}
    replicas = [herald(**env) for _ in range(2)]
    submit(replicas[0], key, 150, "a")
    submit(replicas[1], key, 150, "b")
    wait_all_sent(replicas[0], key, 300, timeout=120)
    times = standin.times()
    assert len(times) == 300
    busiest = busiest_second(times)
    print(f"\nbusiest one-second window: {busiest} sends; total {times[-1] - times[0]:.1f}s")
    assert busiest <= CEILING
    assert sum(rate_limit_waits(replica) for replica in replicas) > 0


async def test_a_database_stall_does_not_bunch_rate_limited_sends(
    herald: Start, standin: TwilioStandIn
) -> None:
    """Jobs whose send slot passes while their claim waits on Postgres must not all go at once.

    An exclusive lock on `notifications` holds every claim for a second in the middle of the
    run, as a checkpoint or a slow disk would. Without re-pacing, the twenty jobs given a slot
    in that second all send the moment the lock goes, on top of the regular pace.
    """
    key = await new_key("stall")
    process = herald(**FAST_RECOVERY, **standin.env(), SMS_RATE_LIMIT=f"{LIMIT}/s")
    submit(process, key, 120, "s")
    started = time.monotonic()
    while len(standin.times()) < 20:
        assert time.monotonic() - started < 30, "sending did not start"
        await asyncio.sleep(0.05)

    url = make_url(DATABASE_URL)
    connection = await asyncpg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database,
    )
    try:
        async with connection.transaction():
            await connection.execute("LOCK TABLE notifications IN EXCLUSIVE MODE")
            await asyncio.sleep(1.0)
    finally:
        await connection.close()

    wait_all_sent(process, key, 120, timeout=60)
    times = standin.times()
    assert len(times) == 120
    busiest = busiest_second(times)
    print(f"\nbusiest one-second window: {busiest} sends; total {times[-1] - times[0]:.1f}s")
    assert busiest <= CEILING
