"""`Batcher`: many concurrent callers' items written together, each answered on its own.

Used where per-item round trips were the cost: deliveries' claims and outcomes in Postgres
(`herald.notifications.batches`) and the workers' job bookkeeping in Redis
(`herald.queue.worker`). There is no timer: the first item starts a flush after one turn of
the event loop (so the items of callers that run in the same turn go together), and what
arrives while a flush is in flight goes in the next one. An idle process adds no latency; a
busy one writes bigger batches, not more round trips. A failed write reaches every caller of
its batch.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class Batcher(Generic[In, Out]):
    """Gathers items and runs `write(items) -> results` (same order) for each batch."""

    def __init__(
        self,
        write: Callable[[list[In]], Awaitable[list[Out]]],
        max_size: int,
        name: str = "herald-batch",
    ) -> None:
        self._write = write
        self._name = name
        self._max_size = max_size
        self._pending: list[tuple[In, asyncio.Future[Out]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: In) -> Out:
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            # A context of its own: the flush must not log as the caller that started it.
            self._flusher = asyncio.create_task(
                self._flush(), name=self._name, context=contextvars.Context()
            )
        return await future

    async def _flush(self) -> None:
        while self._pending:
            await asyncio.sleep(0)  # the jobs started in this same turn join the batch
            batch = self._pending[: self._max_size]
            del self._pending[: self._max_size]
            try:
                results = await self._write([item for item, _ in batch])
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():  # its job was cancelled meanwhile
                    future.set_result(result)
