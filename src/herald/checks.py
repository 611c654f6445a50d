"""`herald check`: the settings as loaded, and whether Postgres and Redis answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from redis.exceptions import ResponseError
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from herald.config import Settings
from herald.db.engine import pooler_safe
from herald.db.migrate import pending_migrations
from herald.embedded import describe as describe_embedded
from herald.redis_connection import redis_client, safe_redis_url
from herald.resources import process_role


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _error(exc: BaseException) -> str:
    text_ = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text_}" if text_ else type(exc).__name__


async def _postgres(settings: Settings) -> str:
    engine = create_async_engine(
        settings.database_url,
        connect_args={"timeout": settings.database_timeout_seconds, **pooler_safe(settings)},
    )
    try:
        async with asyncio.timeout(settings.database_timeout_seconds * 2):
            async with engine.connect() as conn:
                version = (await conn.execute(text("SHOW server_version"))).scalar_one()
            behind = await pending_migrations(settings)
    finally:
        await engine.dispose()
    note = "migrations pending: run `herald migrate`" if behind else "schema up to date"
    return f"PostgreSQL {version}, {note}"


async def _redis(settings: Settings) -> str:
    redis = redis_client(settings.redis_url, socket_connect_timeout=3, socket_timeout=3)
    try:
        info = await redis.info("server")
        try:
            policy = (await redis.config_get("maxmemory-policy")).get("maxmemory-policy", "?")
        except ResponseError:  # managed Redis often refuses CONFIG
            policy = "unknown (CONFIG GET refused)"
    finally:
        await redis.aclose()
    warning = (
        ""
        if policy.startswith(("noeviction", "unknown"))
        else " (warning: set noeviction, see README)"
    )
    server = f"Valkey {info['valkey_version']}" if "valkey_version" in info else "Redis"
    server = server if "valkey_version" in info else f"Redis {info.get('redis_version', '?')}"
    return f"{server}, maxmemory-policy {policy}{warning}"


async def run_checks(settings: Settings, echo: Callable[[str], None]) -> bool:
    echo(f"role: {process_role(settings)}  listen: {settings.host}:{settings.port}")
    echo(f"queues: {', '.join(settings.worker_queues) or 'all'}")
    for line in describe_embedded():
        echo(line)
    ok = True
    checks = (
        ("postgres", _safe(settings.database_url), "DATABASE_URL", _postgres),
        ("redis", safe_redis_url(settings.redis_url), "REDIS_URL", _redis),
    )
    for name, url, variable, check in checks:
        try:
            echo(f"{name}: ok ({await check(settings)}) at {url}")
        except Exception as exc:
            ok = False
            echo(f"{name}: cannot reach {url} ({variable}): {_error(exc)}")
    return ok
