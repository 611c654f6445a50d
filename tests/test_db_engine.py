"""The connection pool: stale connections are replaced before anyone sees them.

Herald does not ping every connection it takes from the pool (that costs a delivery about 15%
of its throughput, see `herald.db.engine`); it pings one that sat idle. These tests kill the
pooled connections on the Postgres side, as a restart or a proxy's idle timeout would.
"""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy import event

from herald.db.engine import IDLE_PING_SECONDS
from tests.conftest import DATABASE_URL, make_settings, running_app
from tests.notifications.conftest import auth, new_key


async def _kill_herald_connections() -> int:
    """Terminate every connection Herald's pool holds to the test database; how many."""
    conn = await asyncpg.connect(DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name LIKE 'herald:%'"
        )
    finally:
        await conn.close()
    return int(killed)


async def test_connections_killed_while_idle_are_replaced_without_an_error() -> None:
    key = await new_key("pool")
    settings = make_settings(enable_workers=False, database_pool_size=2)
    async with running_app(settings) as (_, client):
        # Two at once, so that the pool holds two connections.
        first = await asyncio.gather(
            *(client.get("/v1/notifications", headers=auth(key)) for _ in range(2))
        )
        assert [r.status_code for r in first] == [200, 200]

        assert await _kill_herald_connections() >= 1
        await asyncio.sleep(IDLE_PING_SECONDS + 0.2)

        after = await asyncio.gather(
            *(client.get("/v1/notifications", headers=auth(key)) for _ in range(4))
        )
        assert [r.status_code for r in after] == [200] * 4, [r.text for r in after]
        assert (await client.get("/health/ready")).status_code == 200


async def test_requests_do_not_wait_for_a_connection_behind_busy_workers() -> None:
    """A unified process has a pool for the API and one for the workers: with every worker
    connection taken, a read (which needs a connection) is still answered: with one shared
    pool it waited DATABASE_TIMEOUT_SECONDS for one and got a 503."""
    settings = make_settings(database_pool_size=1, database_timeout_seconds=1)
    key = await new_key("bulkhead")
    async with running_app(settings) as (app, client):
        resources = app.state.resources
        assert resources.worker_engine is not resources.engine
        held = [await resources.worker_engine.connect() for _ in range(2)]  # pool 1 + overflow 1
        try:
            response = await client.get("/v1/notifications", headers=auth(key))
        finally:
            for connection in held:
                await connection.close()
    assert response.status_code == 200


async def test_a_single_role_process_has_one_pool() -> None:
    for settings in (make_settings(enable_workers=False), make_settings(enable_api=False)):
        async with running_app(settings) as (app, _):
            resources = app.state.resources
            assert resources.worker_engine is resources.engine


async def test_the_api_pool_is_open_before_the_first_burst_of_requests() -> None:
    """The API's pool connects at start-up, so a burst of concurrent requests (here as many
    as the pool holds) connects nothing while it is served; a worker-only process opens
    nothing ahead (its workers connect as they start)."""
    key = await new_key("warm")
    settings = make_settings(enable_workers=False, database_pool_size=6)
    async with running_app(settings) as (app, client):
        pool = app.state.resources.engine.sync_engine.pool
        assert pool.checkedin() == 6
        connects: list[object] = []

        def connected(*_: object) -> None:
            connects.append(True)

        event.listen(pool, "connect", connected)
        try:
            burst = await asyncio.gather(
                *(client.get("/v1/notifications", headers=auth(key)) for _ in range(6))
            )
        finally:
            event.remove(pool, "connect", connected)
        assert [r.status_code for r in burst] == [200] * 6
        assert connects == []
    async with running_app(make_settings(enable_api=False, database_pool_size=6)) as (app, _):
        assert app.state.resources.engine.sync_engine.pool.checkedin() < 6


async def test_a_process_starts_while_the_database_is_down() -> None:
    """Opening the pool ahead is best effort: with Postgres unreachable the process still
    starts, and readiness says what is wrong."""
    settings = make_settings(
        enable_workers=False,
        database_url="postgresql+asyncpg://postgres@127.0.0.1:1/nowhere",
        database_timeout_seconds=1,
    )
    async with running_app(settings) as (_, client):
        ready = await client.get("/health/ready")
    assert ready.status_code == 503
