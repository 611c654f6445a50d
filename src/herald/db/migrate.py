"""Database creation and migrations, safe for replicas that start together.

`migrate()` creates the database named in `DATABASE_URL` when it is missing, then applies
pending Alembic migrations while holding a Postgres advisory lock, so only one process
migrates at a time and the others find nothing left to do.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from herald.config import Settings
from herald.db.engine import pooler_safe

log = structlog.get_logger()

MIGRATIONS = Path(__file__).parent / "migrations"
# An arbitrary constant shared by every Herald process: "herald migrations".
_MIGRATION_LOCK = 0x4845524C_4D494752 & 0x7FFFFFFFFFFFFFFF


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


async def _connect(settings: Settings, database: str) -> asyncpg.Connection:
    url = make_url(settings.database_url)
    return await asyncpg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=database,
        timeout=settings.database_timeout_seconds,
        statement_cache_size=0,  # a handful of statements, and safe behind a pooler
    )


async def ensure_database(settings: Settings) -> bool:
    """Create the database if it does not exist; True if it was created.

    A database that exists is found by connecting to it, which needs no access to the
    `postgres` database and works through a pooler (PgBouncer lists only its own databases).
    """
    name = make_url(settings.database_url).database
    if not name:
        raise ValueError("DATABASE_URL must name a database")
    try:
        await (await _connect(settings, name)).close()
        return False
    except asyncpg.InvalidCatalogNameError:
        pass
    conn = await _connect(settings, "postgres")
    try:
        # Replicas starting together would race on CREATE DATABASE (Postgres then reports a
        # unique violation, not "already exists"): serialise them on an advisory lock. Not
        # behind a transaction pooler, where a session lock would stay on the server
        # connection after this one closes; there the errors below settle the race.
        if settings.database_pool_mode == "session":
            await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        quoted = '"' + name.replace('"', '""') + '"'
        try:
            await conn.execute(f"CREATE DATABASE {quoted}")
        except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
            return False  # created meanwhile by a process that does not take the lock
        log.info("database.created", database=name)
        return True
    finally:
        await conn.close()  # closing the session releases the lock


def _upgrade(connection: Connection) -> list[str]:
    config = alembic_config()
    config.attributes["connection"] = connection
    before = MigrationContext.configure(connection).get_current_revision()
    command.upgrade(config, "head")
    after = MigrationContext.configure(connection).get_current_revision()
    if before == after:
        return []
    script = ScriptDirectory.from_config(config)
    return [rev.revision for rev in script.iterate_revisions(after, before)][::-1]


def _engine(settings: Settings) -> AsyncEngine:
    return create_async_engine(
        settings.database_url,
        connect_args={
            "server_settings": {"application_name": "herald:migrate"},
            "timeout": settings.database_timeout_seconds,
            **pooler_safe(settings),
        },
    )


async def migrate(settings: Settings) -> list[str]:
    """Create the database if needed and apply pending migrations; returns what was applied.

    The migrations run in one transaction that first takes a transaction-scoped advisory lock:
    replicas starting together wait for it and then find nothing left to do, and the lock
    cannot outlive the transaction (a session lock would stay on a pooler's server connection).
    """
    await ensure_database(settings)
    engine = _engine(settings)
    try:
        async with engine.connect() as conn, conn.begin():
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            applied = await conn.run_sync(_upgrade)
    finally:
        await engine.dispose()
    if applied:
        log.info("database.migrated", applied=applied)
    return applied


async def pending_migrations(settings: Settings) -> bool:
    """True when the database is behind the newest migration (used by `herald check`)."""
    engine = _engine(settings)
    try:
        async with engine.connect() as conn:
            current = await conn.run_sync(
                lambda c: MigrationContext.configure(c).get_current_revision()
            )
    finally:
        await engine.dispose()
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    return current != head
