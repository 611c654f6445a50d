"""Nothing accepted is lost: SIGKILL mid-flight, a crash between commit and enqueue, Redis
flushed, Redis killed under load, Postgres cut under load."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis as sync_redis

from tests.conftest import DATABASE_URL, make_settings, running_app
from tests.guarantees.conftest import FAST_RECOVERY, count_by_status, submit, wait_all_sent
from tests.notifications.conftest import auth, new_key, wait_status
from tests.support.process import HeraldProcess
from tests.support.redis_server import RedisServer
from tests.support.standin import TwilioStandIn
from tests.support.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.process, pytest.mark.slow]

Start = Callable[..., HeraldProcess]


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


async def test_sigkill_mid_flight_loses_nothing_and_resends_only_what_was_in_flight(
    herald: Start, standin: TwilioStandIn
) -> None:
    key = await new_key("sigkill")
    standin.delay = 0.5
    env = {**FAST_RECOVERY, **standin.env(), "QUEUE_CONCURRENCY": "sms=20"}
    first = herald(**env)
    ids = submit(first, key, 200, "kill")
    while len(standin.received) < 40:
        time.sleep(0.02)
    first.signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed_at = time.monotonic()

    second = herald(**env)
    recovery = wait_all_sent(second, key, 200, timeout=90)
    sends = standin.sends()
    assert set(sends) == set(ids)
    twice = sorted(token for token, n in sends.items() if n == 2)
    assert max(sends.values()) <= 2
    # only deliveries in flight at the kill can go twice: at most the 20 running jobs
    assert len(twice) <= 20
    print(
        f"\nSIGKILL: {len(twice)} of 200 sent twice (in flight at the kill); "
        f"all sent {time.monotonic() - killed_at:.1f}s after the kill ({recovery:.1f}s after restart)"
    )
    # lease 6 s + reconcile interval 1 s + the work itself, far below arq's 310 s expiry
    assert time.monotonic() - killed_at < 90


async def test_a_crash_between_commit_and_enqueue_still_delivers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from herald.queue import JobQueue

    real = JobQueue.enqueue_many
    calls = {"n": 0}

    async def crash_once(self: JobQueue, requests: list) -> list[bool]:  # type: ignore[type-arg]
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("injected: the process died after the commit")
        return await real(self, requests)

    api_key = await new_key("crash")
    monkeypatch.setattr(JobQueue, "enqueue_many", crash_once)
    settings = make_settings(reconcile_interval_seconds=0.5, reconcile_grace_seconds=0.5)
    async with running_app(settings) as (_, client):
        sms = {"channel": "sms", "to": "+447911123456", "body": "hi"}
        response = await client.post("/v1/notifications", json=sms, headers=auth(api_key))
        assert response.status_code == 202
        done = await wait_status(client, api_key, response.json()["id"], timeout=15)
        metrics = (await client.get("/metrics")).text
    assert done["attempts"] == 1
    assert calls["n"] >= 2  # the API's enqueue failed; the reconciler's went through
    lost = [
        line
        for line in metrics.splitlines()
        if line.startswith('herald_reconciler_recovered_total{reason="lost"}')
    ]
    assert float(lost[0].split()[-1]) >= 1


async def test_redis_flushall_with_work_pending_delivers_everything(
    herald: Start, standin: TwilioStandIn, own_redis: RedisServer
) -> None:
    key = await new_key("flush")
    env = {**FAST_RECOVERY, **standin.env(), "REDIS_URL": own_redis.url}
    # an API-only process takes the work while no worker runs, so all of it waits in Redis
    api = herald(ENABLE_WORKERS="false", **env)
    ids = submit(api, key, 100, "flush")
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    scheduled = httpx.post(
        api.url + "/v1/notifications/batch",
        json={
            "notifications": [
                {"channel": "sms", "to": "+447911123456", "body": "later", "send_at": soon}
            ]
            * 20
        },
        headers=auth(key),
        timeout=30,
    )
    assert scheduled.status_code == 202
    ids += [n["id"] for n in scheduled.json()["notifications"]]
    client = sync_redis.Redis.from_url(own_redis.url)
    assert client.zcard("herald:queue:sms") == 120
    client.flushall()
    client.close()

    herald(ENABLE_API="false", **env)
    wait_all_sent(api, key, 120, timeout=60)
    assert standin.sends() == dict.fromkeys(ids, 1)


async def test_redis_killed_and_restarted_under_load_loses_nothing(
    herald: Start, standin: TwilioStandIn, own_redis: RedisServer
) -> None:
    key = await new_key("redis-kill")
    standin.delay = 0.05
    process = herald(**FAST_RECOVERY, **standin.env(), REDIS_URL=own_redis.url)
    ids = submit(process, key, 150, "before")
    while len(standin.received) < 20:
        time.sleep(0.01)
    own_redis.stop()
    # accepted while Redis is down: stored in Postgres, 202 all the same
    ids += submit(process, key, 50, "during")
    time.sleep(1)
    own_redis.start()
    wait_all_sent(process, key, 200, timeout=60)
    assert process.proc is not None
    assert process.proc.poll() is None  # no restart was needed
    assert standin.sends() == dict.fromkeys(ids, 1)
    assert "worker.restarting" in process.logs()


async def test_postgres_cut_under_load_gives_503s_then_delivers_everything_once(
    herald: Start, standin: TwilioStandIn
) -> None:
    from sqlalchemy.engine import make_url

    key = await new_key("pg-cut")
    url = make_url(DATABASE_URL)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    try:
        standin.delay = 0.1
        via_proxy = url.set(port=proxy.port).render_as_string(hide_password=False)
        env = {**FAST_RECOVERY, "JOB_TIMEOUT_SECONDS": "30", **standin.env()}
        process = herald(**env, DATABASE_URL=via_proxy, DATABASE_TIMEOUT_SECONDS="2")
        ids = submit(process, key, 100, "pg")
        while len(standin.received) < 10:
            time.sleep(0.01)
        proxy.pause()
        refused = 0
        for i in range(5):
            started = time.monotonic()
            response = httpx.post(
                process.url + "/v1/notifications",
                json={
                    "channel": "sms",
                    "to": "+447911123456",
                    "body": "x",
                    "reference": f"outage-{i}",
                },
                headers=auth(key),
                timeout=30,
            )
            assert response.status_code in (401, 503), response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert time.monotonic() - started < 5  # an answer, not a hang
            refused += response.status_code == 503
        assert refused >= 1
        ready = process.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["postgres"].startswith("failing")
        time.sleep(3)
        proxy.resume()
        wait_all_sent(process, key, 100, timeout=90)
        counts = count_by_status(process, key)
        assert counts == {"sent": 100}  # nothing half-written from the refused requests
        assert standin.sends() == dict.fromkeys(ids, 1)
    finally:
        proxy.stop()
