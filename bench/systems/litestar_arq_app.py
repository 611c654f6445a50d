"""The baseline for single submissions: a minimal Litestar + arq + SQLAlchemy app.

What someone would write in an afternoon instead of Herald: `POST /v1/notifications` decodes
the body into a typed struct, inserts one row in its own transaction through an SQLAlchemy
session and enqueues an arq job with the row's id; the job, run by an arq `Worker` in the
same process (started in the lifespan, as Herald does), marks the row `sent`. arq is set up
as its own defaults and its `arq` command leave it (`poll_delay` 0.5 s, `max_jobs` 10, pickle,
INFO logs with a line per job start and finish), but for `handle_signals=False`, which any
app that runs arq inside its ASGI server needs.

It does much less than Herald per request: no API key check, no channel rules, no events,
no idempotency, no metrics, no retries or provider. That is the point of the comparison:
Herald must be faster than this all the same.

Run: `python -m bench.systems.litestar_arq_app`, with `PORT`, `DATABASE_URL` and `REDIS_URL`.
The table is `baseline_notifications`, created at start-up if missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging.config
import os
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import uvicorn
from arq import Worker, create_pool, func
from arq.connections import ArqRedis, RedisSettings
from arq.logs import default_log_config
from litestar import Litestar, get, post
from litestar.datastructures import State
from sqlalchemy import DateTime, String, Text, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

TABLE = "baseline_notifications"


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = TABLE

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class NotificationIn(msgspec.Struct):
    channel: str
    to: str
    subject: str | None = None
    body: str | None = None
    data: dict[str, str] | None = None
    reference: str | None = None


class NotificationOut(msgspec.Struct):
    id: uuid.UUID
    status: str


async def mark_sent(ctx: dict[str, Any], notification_id: str) -> None:
    session_maker: async_sessionmaker[AsyncSession] = ctx["session_maker"]
    async with session_maker() as session, session.begin():
        await session.execute(
            update(Row)
            .where(Row.id == uuid.UUID(notification_id))
            .values(status="sent", sent_at=datetime.now(UTC))
        )


@post("/v1/notifications", status_code=202)
async def create(state: State, data: NotificationIn) -> NotificationOut:
    row = Row(
        id=uuid.uuid4(),
        channel=data.channel,
        recipient=data.to,
        subject=data.subject,
        body=data.body,
        reference=data.reference,
        status="queued",
        created_at=datetime.now(UTC),
    )
    async with state.session_maker() as session, session.begin():
        session.add(row)
    await state.arq.enqueue_job("mark_sent", str(row.id))
    return NotificationOut(row.id, row.status)


@get("/health/ready")
async def ready() -> dict[str, str]:
    return {"status": "ok"}


@get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@contextlib.asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    engine = create_async_engine(os.environ["DATABASE_URL"], pool_size=10, max_overflow=10)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
        await connection.execute(text("SELECT 1"))
    session_maker = async_sessionmaker(engine, expire_on_commit=False)
    redis = RedisSettings.from_dsn(os.environ["REDIS_URL"])
    app.state.session_maker = session_maker
    app.state.arq = await create_pool(redis)
    worker_pool: ArqRedis = await create_pool(redis)
    worker = Worker(
        functions=[func(mark_sent, name="mark_sent")],
        redis_pool=worker_pool,
        handle_signals=False,
        ctx={"session_maker": session_maker},
    )
    task = asyncio.create_task(worker.main())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(asyncio.CancelledError):
            await worker.close()
        await app.state.arq.aclose()
        await engine.dispose()


def create_app() -> Litestar:
    return Litestar([create, ready, live], lifespan=[lifespan])


def main() -> None:
    config = default_log_config(verbose=False)
    config["handlers"]["arq.standard"]["stream"] = sys.stdout
    logging.config.dictConfig(config)
    uvicorn.run(
        create_app(),
        host="127.0.0.1",
        port=int(os.environ["PORT"]),
        loop="uvloop",
        http="httptools",
        # uvicorn's defaults: INFO, with its access log (a line per request, as Herald logs).
        log_level="info",
    )


if __name__ == "__main__":
    main()
