"""The SQLAlchemy async engine (asyncpg) and session factory, created in the lifespan."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from herald.config import Settings


def create_engine(settings: Settings, *, application_name: str) -> AsyncEngine:
    """An engine whose connections name the process role in `pg_stat_activity`.

    Connecting and every statement are bounded by `DATABASE_TIMEOUT_SECONDS`, so an outage
    turns into a quick error (and a 503) instead of a hang.
    """
    timeout = settings.database_timeout_seconds
    return create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        pool_pre_ping=True,
        pool_timeout=timeout,
        connect_args={
            "timeout": timeout,
            "command_timeout": timeout * 2,
            "server_settings": {
                "application_name": application_name[:63],
                "lock_timeout": str(int(timeout * 1000)),
            },
        },
    )


def create_session_maker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def database_name(url: str) -> str:
    name = make_url(url).database
    if not name:
        raise ValueError("DATABASE_URL must name a database")
    return name
