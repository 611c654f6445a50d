"""The SQLAlchemy async engine (asyncpg) and session factory, created in the lifespan."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from sqlalchemy import event, exc, text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from herald.config import Settings

log = structlog.get_logger()

# A pooled connection unused for longer than this is pinged before it is handed out.
IDLE_PING_SECONDS = 1.0


def pooler_safe(settings: Settings) -> dict[str, Any]:
    """Driver options for `DATABASE_POOL_MODE`: none in session mode; in transaction mode
    (PgBouncer `pool_mode = transaction` and the like), no prepared statement outlives the
    statement that made it, since the next statement may run on another server connection.

    asyncpg's own cache off (`statement_cache_size=0`) makes it prepare unnamed statements and
    parse them again in the same round trip as their execution; SQLAlchemy's cache off
    (`prepared_statement_cache_size=0`) stops it keeping statements per connection. SQLAlchemy's
    documented alternative, unique names (`prepared_statement_name_func`), is not used: a named
    statement is prepared in one round trip and executed in the next, and outside a
    transaction (the workers' autocommit statements) PgBouncer may route the two to different
    servers ("prepared statement ... does not exist"; tests/managed/test_pgbouncer.py).
    """
    if settings.database_pool_mode == "transaction":
        return {"statement_cache_size": 0, "prepared_statement_cache_size": 0}
    return {}


def server_settings(settings: Settings, application_name: str) -> dict[str, str]:
    """Session settings sent when connecting. PgBouncer passes on only a few startup
    parameters (application_name and TimeZone among them) and refuses the others, so in
    transaction mode `lock_timeout` is left to the database (`ALTER DATABASE ... SET
    lock_timeout`, see the README); asyncpg's `command_timeout` still bounds every statement."""
    values = {
        "application_name": application_name[:63],
        # Times built in SQL (JSON of events) read back in UTC, like the columns do.
        "TimeZone": "UTC",
    }
    if settings.database_pool_mode == "session":
        values["lock_timeout"] = str(int(settings.database_timeout_seconds * 1000))
    return values


async def warn_without_lock_timeout(engine: AsyncEngine, settings: Settings) -> None:
    """Behind a transaction pooler Herald cannot set `lock_timeout` itself: say so at start-up
    when the database does not set it either."""
    if settings.database_pool_mode != "transaction":
        return
    try:
        async with engine.connect() as conn:
            value = (await conn.execute(text("SHOW lock_timeout"))).scalar_one()
    except Exception as exc:  # Postgres down: readiness says so; nothing to add here
        log.debug("database.lock_timeout_unknown", error=f"{type(exc).__name__}: {exc}")
        return
    if value == "0":
        log.warning(
            "database.lock_timeout_unset",
            detail="DATABASE_POOL_MODE=transaction: run ALTER DATABASE ... SET lock_timeout ="
            " '5s' (or ALTER ROLE), so that a statement waiting on a lock fails fast",
        )


def create_engine(settings: Settings, *, application_name: str) -> AsyncEngine:
    """An engine whose connections name the process role in `pg_stat_activity`.

    Connecting and every statement are bounded by `DATABASE_TIMEOUT_SECONDS`, so an outage
    turns into a quick error (and a 503) instead of a hang.
    """
    timeout = settings.database_timeout_seconds
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        pool_timeout=timeout,
        # Errors quote the statement; never its parameters (addresses, bodies, key hashes),
        # because error messages are logged.
        hide_parameters=True,
        connect_args={
            "timeout": timeout,
            "command_timeout": timeout * 2,
            "server_settings": server_settings(settings, application_name),
            **pooler_safe(settings),
        },
    )
    ping_idle_connections(engine, IDLE_PING_SECONDS)
    return engine


async def open_pool(engine: AsyncEngine, count: int) -> None:
    """Open `count` of the pool's connections now (they stay pooled).

    SQLAlchemy's pool connects on demand, so a process that has served one request at a time
    holds one connection, and the first burst of concurrent requests connects in the middle of
    it: each connection costs a Postgres backend's start and the driver's set-up, during which
    the requests queue and the pool opens yet more. Measured (`http_under_load`): every GET
    slower than 20 ms fell in such a burst of connects, up to 20 in 0.3 s and 300 ms at the
    tail. The API's pool is therefore opened at start-up, as it would stand after its first
    burst (the pool never closes an idle connection below its size). A database that is down
    is not an error here: the requests and the readiness check report it.
    """

    async def connect() -> AsyncConnection:
        return await engine.connect()

    results = await asyncio.gather(*(connect() for _ in range(count)), return_exceptions=True)
    opened = [r for r in results if isinstance(r, AsyncConnection)]
    for connection in opened:
        await connection.close()
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        log.debug("database.pool_not_opened", error=f"{type(failed[0]).__name__}: {failed[0]}")


def ping_idle_connections(engine: AsyncEngine, idle_seconds: float) -> None:
    """Check a pooled connection before handing it out, but only when it sat idle.

    SQLAlchemy's `pool_pre_ping` checks every checkout; with asyncpg outside autocommit that is
    three round trips (BEGIN, a ping, ROLLBACK), which cost a delivery about 15% of its
    throughput. A connection that was in use a moment ago is as good as a ping says; the ones
    that go stale (Postgres restarted, a proxy's idle timeout) have sat unused. A failed ping
    discards the connection and the pool hands out a fresh one, so the caller never sees it.
    """
    dialect = engine.sync_engine.dialect

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["herald_idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("herald_idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.DisconnectionError(f"stale pooled connection: {error}") from error


def create_session_maker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
