"""Herald over a Redis that speaks only TLS, and over Redis Sentinel, end to end."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from tests.managed.conftest import exercise, managed_env
from tests.notifications.conftest import new_key
from tests.support.managed import SentinelSet, TlsRedis, TlsSentinel
from tests.support.process import HeraldProcess
from tests.support.standin import TwilioStandIn

pytestmark = [pytest.mark.process, pytest.mark.slow]

Start = Callable[..., HeraldProcess]


async def test_rediss_carries_the_queues_the_feed_and_the_rate_limit(
    herald: Start, standin: TwilioStandIn
) -> None:
    server = TlsRedis().start()
    try:
        process = herald(**managed_env(standin, REDIS_URL=server.url()))
        await exercise(process, await new_key("tls"), standin)
        # Every connection Herald made is TLS (the server has no plain port) and named.
        client = redis.Redis.from_url(server.url())
        names = {c["name"] for c in client.client_list()}
        client.close()
        assert any(name.endswith(":sms") for name in names), names
    finally:
        server.stop()


async def test_rediss_refuses_a_server_certificate_it_cannot_verify(herald: Start) -> None:
    server = TlsRedis().start()
    try:
        url = server.url().split("?")[0]  # no CA: the self-signed certificate is not trusted
        process = herald(wait_ready=False, REDIS_URL=url)
        process.wait_for("/health/live", timeout=20)
        ready = process.get("/health/ready")
        assert ready.status_code == 503, ready.text
        assert "CERTIFICATE_VERIFY_FAILED" in process.logs()
    finally:
        server.stop()


async def test_sentinel_carries_the_queues_the_feed_and_the_rate_limit(
    herald: Start, standin: TwilioStandIn
) -> None:
    sentinel = SentinelSet().start()
    try:
        process = herald(**managed_env(standin, REDIS_URL=sentinel.url(db=3)))
        await exercise(process, await new_key("sentinel"), standin)
        # The work went to the master the Sentinel named, in the database the URL named.
        master = redis.Redis(port=sentinel.master.port)
        herald_clients = [c for c in master.client_list() if c["name"].startswith("herald:")]
        master.close()
        assert any(c["name"].endswith(":sms") for c in herald_clients), herald_clients
        assert {c["db"] for c in herald_clients} == {"3"}, herald_clients
    finally:
        sentinel.stop()


async def test_after_a_sentinel_failover_herald_works_on_the_new_master(
    herald: Start, standin: TwilioStandIn
) -> None:
    sentinel = SentinelSet(replica=True).start()
    try:
        process = herald(**managed_env(standin, REDIS_URL=sentinel.url()))
        key = await new_key("failover")
        await exercise(process, key, standin)
        new_master = sentinel.failover()
        await exercise(process, key, standin)  # delivery, the feed and the rate limit again
        client = redis.Redis(port=new_master.port)
        names = {c["name"] for c in client.client_list()}
        client.close()
        assert any(name.endswith(":sms") for name in names), names  # the workers moved over
    finally:
        sentinel.stop()


async def test_a_tls_sentinel_in_front_of_a_tls_redis(
    herald: Start, standin: TwilioStandIn
) -> None:
    """rediss+sentinel: TLS to the Sentinel and to the master, one CA for both."""
    sentinel = TlsSentinel().start()
    try:
        process = herald(**managed_env(standin, REDIS_URL=sentinel.url(db=2)))
        await exercise(process, await new_key("tls-sentinel"), standin)
        client = redis.Redis.from_url(sentinel.master.url())
        herald_clients = [c for c in client.client_list() if c["name"].startswith("herald:")]
        client.close()
        assert {c["db"] for c in herald_clients} == {"2"}, herald_clients
    finally:
        sentinel.stop()
