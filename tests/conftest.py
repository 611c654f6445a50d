"""Fixtures: a real Postgres and Redis, clean for every test.

With HERALD_TEST_DATABASE_URL and HERALD_TEST_REDIS_URL set, tests use those (e.g. the
machine's servers); whichever is not set is an embedded server (Herald's own launcher, the
wheels' Postgres and Valkey), started once per run in a temporary data folder. Tests use the
database `herald_test` (created and migrated once per run) and Redis database 15. Every test
starts with empty tables and an empty Redis database.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import redis
from litestar import Litestar
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

import tests.support.jobs  # noqa: F401 - registers the test jobs in this process too
from herald.app import create_app
from herald.config import Settings
from herald.db.migrate import migrate
from tests.support.process import HeraldProcess


def _test_servers() -> tuple[str, str]:
    """The test database and Redis URLs: the configured ones, else embedded servers."""
    database = os.environ.get("HERALD_TEST_DATABASE_URL", "")
    redis_url = os.environ.get("HERALD_TEST_REDIS_URL", "")
    # A `herald` subprocess that falls back to embedded mode must never touch the user's own
    # data folder (nor the test servers' one, whose lock this process holds).
    fallback = tempfile.mkdtemp(prefix="herald-test-fallback-")
    atexit.register(shutil.rmtree, fallback, ignore_errors=True)
    os.environ["HERALD_DATA_DIR"] = fallback
    if database and redis_url:
        return database, redis_url
    from herald.embedded import use_embedded

    folder = tempfile.mkdtemp(prefix="herald-test-servers-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # runs after they stop
    settings = use_embedded(
        Settings(
            _env_file=None, database_url=database, redis_url=redis_url, herald_data_dir=folder
        ),  # type: ignore[call-arg]
        role="tests",
        report=lambda *args, **fields: None,
    )
    database = database or make_url(settings.database_url).set(
        database="herald_test"
    ).render_as_string(hide_password=False)
    return database, redis_url or settings.redis_url.rsplit("/", 1)[0] + "/15"


DATABASE_URL, REDIS_URL = _test_servers()
TABLES = (
    "recipient_push_tokens",
    "recipients",
    "notification_events",
    "notifications",
    "idempotency_keys",
    "api_keys",
    "paused_queues",
    "worker_processes",
    "templates",
    "messages",
)


def base_env() -> dict[str, str]:
    """Environment for a `herald serve` subprocess against the test database and Redis."""
    return {
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "JOB_MODULES": "tests.support.jobs",
        "LOG_FORMAT": "json",
        "AUTO_MIGRATE": "false",
        "SHUTDOWN_GRACE_SECONDS": "5",
        # gRPC's fixed default port would clash between processes; gRPC tests turn it on.
        "ENABLE_GRPC": "false",
    }


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": DATABASE_URL,
        "redis_url": REDIS_URL,
        "job_modules": ["tests.support.jobs"],
        "log_format": "json",
        "shutdown_grace_seconds": 2,
        # Off unless a test asks (with a free `grpc_port`): 50051 would clash between apps.
        "enable_grpc": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def _truncate() -> None:
    engine = create_async_engine(DATABASE_URL)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
    finally:
        await engine.dispose()


async def server_execute(statement: str) -> None:
    """Run one statement on the test server's `postgres` database (CREATE/DROP DATABASE)."""
    url = make_url(DATABASE_URL)
    conn = await asyncpg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database="postgres",
    )
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def drop_database(name: str) -> None:
    """Drop a database of the test server, connections and all."""
    await server_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _recreate_database() -> None:
    """Drop the test database and migrate a new one: every run starts from the migrations."""
    await drop_database(str(make_url(DATABASE_URL).database))
    await migrate(make_settings())


@pytest.fixture(scope="session", autouse=True)
def _migrated() -> None:
    asyncio.run(_recreate_database())


@pytest.fixture(autouse=True)
def _clean_state(_migrated: None) -> None:
    asyncio.run(_truncate())
    redis.Redis.from_url(REDIS_URL).flushdb()


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def sync_redis() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def herald() -> Iterator[Callable[..., HeraldProcess]]:
    """Start `herald serve` subprocesses; every one is stopped at the end of the test."""
    started: list[HeraldProcess] = []

    def start(wait_ready: bool = True, **env: str) -> HeraldProcess:
        process = HeraldProcess({**base_env(), **env})
        started.append(process)
        return process.start(wait_ready=wait_ready)

    yield start
    for process in started:
        process.stop()


@contextlib.asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[tuple[Litestar, httpx.AsyncClient]]:
    """The app with its lifespan (workers included) in this test's event loop, and a client.

    The lifespan runs in a task of its own, so that a fixture may enter and leave it from
    different tasks (anyio's cancel scopes must be left by the task that entered them).
    """
    app = create_app(settings)
    started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    async def hold() -> None:
        try:
            async with app.lifespan():
                started.set_result(None)
                await stop.wait()
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            raise

    task = asyncio.create_task(hold())
    await started
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://herald") as client:
            yield app, client
    finally:
        stop.set()
        await task
