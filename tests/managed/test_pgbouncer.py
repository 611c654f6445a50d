"""Herald through PgBouncer in transaction mode (DATABASE_POOL_MODE=transaction), end to end.

PgBouncer shares two server connections among all of Herald's, so consecutive statements of
one Herald connection run on different Postgres sessions: anything that relied on a prepared
statement or session state surviving between statements would fail here.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from herald.auth.keys import create_key
from herald.db.engine import create_engine, create_session_maker, server_settings
from herald.db.migrate import migrate
from tests.conftest import DATABASE_URL, drop_database, make_settings, server_execute
from tests.managed.conftest import exercise, managed_env
from tests.support.managed import PgBouncer
from tests.support.process import HeraldProcess
from tests.support.standin import TwilioStandIn

DATABASE = "herald_pgbouncer_test"

Start = Callable[..., HeraldProcess]


async def _create_database() -> None:
    await drop_database(DATABASE)
    await server_execute(f'CREATE DATABASE "{DATABASE}"')


@pytest.fixture
def pgbouncer() -> Iterator[PgBouncer]:
    asyncio.run(_create_database())
    bouncer = PgBouncer(DATABASE_URL, DATABASE).start()
    yield bouncer
    bouncer.stop()
    asyncio.run(drop_database(DATABASE))


async def _statements(engine: AsyncEngine) -> list[BaseException]:
    """Many concurrent short statements, in transactions and autocommit; the errors."""
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def work(n: int) -> None:
        for i in range(20):
            for target in (engine, autocommit):
                async with target.connect() as conn:
                    row = await conn.execute(text("SELECT CAST(:n AS int) + :i"), {"n": n, "i": i})
                    assert row.scalar_one() == n + i
                    await conn.commit()

    try:
        results = await asyncio.gather(*(work(n) for n in range(8)), return_exceptions=True)
    finally:
        await engine.dispose()
    return [r for r in results if isinstance(r, BaseException)]


def _messages(errors: list[BaseException]) -> set[str]:
    return {str(e).splitlines()[0] for e in errors}


async def test_each_part_of_the_transaction_mode_is_needed_and_together_they_work(
    pgbouncer: PgBouncer,
) -> None:
    session = make_settings(database_url=pgbouncer.url, database_pool_mode="session")
    transaction = session.model_copy(update={"database_pool_mode": "transaction"})
    # Session mode sends lock_timeout when connecting, which PgBouncer refuses.
    errors = await _statements(create_engine(session, application_name="herald:test"))
    assert errors
    assert all("unsupported startup parameter: lock_timeout" in m for m in _messages(errors))
    # Without lock_timeout but with the statement caches on, prepared statements go astray.
    cached = create_async_engine(
        pgbouncer.url,
        pool_size=8,
        connect_args={"server_settings": server_settings(transaction, "herald:test")},
    )
    errors = await _statements(cached)
    assert errors
    assert any("prepared statement" in m for m in _messages(errors)), _messages(errors)
    # Both, as DATABASE_POOL_MODE=transaction does: no error.
    errors = await _statements(create_engine(transaction, application_name="herald:test"))
    assert errors == [], _messages(errors)


@pytest.mark.process
@pytest.mark.slow
async def test_herald_serve_migrates_delivers_streams_and_paces_through_pgbouncer(
    herald: Start, pgbouncer: PgBouncer, standin: TwilioStandIn
) -> None:
    env = managed_env(
        standin,
        DATABASE_URL=pgbouncer.url,
        DATABASE_POOL_MODE="transaction",
        AUTO_MIGRATE="true",
    )
    process = herald(**env)  # migrates through PgBouncer on start
    settings = make_settings(database_url=pgbouncer.url, database_pool_mode="transaction")
    assert await migrate(settings) == []  # the lock was let go with its transaction
    engine = create_engine(settings, application_name="herald:test")
    try:
        async with create_session_maker(engine)() as session, session.begin():
            key = await create_key(session, f"pgbouncer-{uuid.uuid4().hex[:6]}")
    finally:
        await engine.dispose()
    await exercise(process, key, standin)
    assert "prepared statement" not in process.logs()
    assert "database.lock_timeout_unset" in process.logs()  # this database does not set it
