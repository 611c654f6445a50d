"""SAQ on Redis, configured as a user would: `Worker(queue, functions, concurrency=...)` with
its defaults otherwise. Its workers block on Redis (BLMOVE) instead of polling. Logging as the
`saq` command sets it up without `-v` (WARNING: nothing per job).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from saq import Queue, Worker

from bench.env import CONCURRENCY, QUEUE, REDIS_URL
from bench.recorder import RECORDER
from bench.systems import JobArgs, System

_BULK_CONCURRENCY = 50


async def record(ctx: dict[str, Any], *, enqueued_at: float, n: int) -> None:
    RECORDER.started(enqueued_at, n)


async def noop(ctx: dict[str, Any], *, n: int) -> None:
    RECORDER.noop_started()
    RECORDER.noop_finished()


_KWARGS = {"record": ("enqueued_at", "n"), "noop": ("n",)}


class SaqSystem(System):
    name = "saq"

    def __init__(self) -> None:
        super().__init__()
        self._queue: Any = None
        self._worker: Worker[Any] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start_worker(self) -> None:
        logging.basicConfig(level=logging.WARNING)
        self._queue = Queue.from_url(REDIS_URL, name=QUEUE)
        await self._queue.connect()
        self._worker = Worker(
            self._queue,
            functions=[("record", record), ("noop", noop)],
            concurrency=CONCURRENCY,
        )
        self._task = asyncio.create_task(self._worker.start())
        await asyncio.sleep(0)

    async def stop_worker(self) -> None:
        if self._worker is not None:
            await self._worker.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._queue is not None:
            await self._queue.disconnect()

    async def connect(self) -> None:
        self._queue = Queue.from_url(REDIS_URL, name=QUEUE)
        await self._queue.connect()

    async def disconnect(self) -> None:
        if self._queue is not None:
            await self._queue.disconnect()

    async def enqueue(self, job: str, *args: Any) -> None:
        kwargs = dict(zip(_KWARGS[job], args, strict=True))
        await self._queue.enqueue(job, kwargs=kwargs)

    async def enqueue_bulk(self, job: str, args: Sequence[JobArgs]) -> None:
        for start in range(0, len(args), _BULK_CONCURRENCY):
            chunk = args[start : start + _BULK_CONCURRENCY]
            await asyncio.gather(*(self.enqueue(job, *one) for one in chunk))
