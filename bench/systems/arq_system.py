"""Plain arq 0.28, configured as a user would: its `Worker` with the defaults but for
`poll_delay`, `max_jobs` (the same concurrency as the others) and `handle_signals=False`
(the benchmark owns the process). Logging is set up as the `arq` command does (INFO, one
line per job start and finish), written to stdout like Herald's, which the runner discards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging.config
import sys
from collections.abc import Sequence
from typing import Any

from arq import Worker, create_pool, func
from arq.connections import ArqRedis, RedisSettings
from arq.logs import default_log_config

from bench.env import CONCURRENCY, QUEUE, REDIS_URL
from bench.recorder import RECORDER
from bench.systems import JobArgs, System

QUEUE_NAME = f"arq:queue:{QUEUE}"
_BULK_CONCURRENCY = 50


async def record(ctx: dict[str, Any], enqueued_at: float, n: int) -> None:
    RECORDER.started(enqueued_at, n)


async def noop(ctx: dict[str, Any], n: int) -> None:
    RECORDER.noop_started()
    RECORDER.noop_finished()


def _configure_logging() -> None:
    config = default_log_config(verbose=False)
    config["handlers"]["arq.standard"]["stream"] = sys.stdout
    logging.config.dictConfig(config)


class ArqSystem(System):
    name = "arq"

    def __init__(self, *, poll_delay: float = 0.5) -> None:
        super().__init__(poll_delay=poll_delay)
        self._worker: Worker | None = None
        self._task: asyncio.Task[None] | None = None
        self._pool: ArqRedis | None = None

    async def start_worker(self) -> None:
        _configure_logging()
        pool = await create_pool(RedisSettings.from_dsn(REDIS_URL))
        self._worker = Worker(
            functions=[func(record, name="record"), func(noop, name="noop")],
            redis_pool=pool,
            queue_name=QUEUE_NAME,
            max_jobs=CONCURRENCY,
            poll_delay=self.options["poll_delay"],
            handle_signals=False,
        )
        self._task = asyncio.create_task(self._worker.main())
        await asyncio.sleep(0)

    async def stop_worker(self) -> None:
        if self._worker is not None and self._worker.tasks:
            # Let the last jobs finish their bookkeeping: close() would cancel them.
            await asyncio.wait(list(self._worker.tasks.values()), timeout=5)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._worker is not None:
            # close() can raise CancelledError in a narrow race (ARCHITECTURE.md section 2).
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker.close()

    async def connect(self) -> None:
        self._pool = await create_pool(
            RedisSettings.from_dsn(REDIS_URL), default_queue_name=QUEUE_NAME
        )

    async def disconnect(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()

    async def enqueue(self, job: str, *args: Any) -> None:
        assert self._pool is not None
        await self._pool.enqueue_job(job, *args, _queue_name=QUEUE_NAME)

    async def enqueue_bulk(self, job: str, args: Sequence[JobArgs]) -> None:
        for start in range(0, len(args), _BULK_CONCURRENCY):
            chunk = args[start : start + _BULK_CONCURRENCY]
            await asyncio.gather(*(self.enqueue(job, *one) for one in chunk))
