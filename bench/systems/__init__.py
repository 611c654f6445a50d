"""The job systems under test, behind one small interface.

A `System` can run a worker in the current event loop and enqueue the benchmark jobs
(`record(enqueued_at, n)` for pick-up, `noop(n)` for throughput) from a client of its own.
`make_system(name, options)` builds one by name, in the worker process or in a separate
enqueuer process alike, so a variant is just a name plus options.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

JobArgs = tuple[Any, ...]


class System(ABC):
    """One queue implementation: a worker in this loop, and/or a client that enqueues."""

    name: str

    def __init__(self, **options: Any) -> None:
        self.options = options

    @abstractmethod
    async def start_worker(self) -> None:
        """Start consuming the benchmark queue in the running loop; return once it is up."""

    @abstractmethod
    async def stop_worker(self) -> None:
        """Stop the worker and close everything `start_worker` opened."""

    @abstractmethod
    async def connect(self) -> None:
        """Open a client of this system's own for enqueueing (as another process would)."""

    @abstractmethod
    async def disconnect(self) -> None: ...

    def use_worker_client(self) -> None:
        """Enqueue through the worker's own process-wide client instead (Herald only)."""
        raise NotImplementedError(f"{self.name} has no in-process client")

    @abstractmethod
    async def enqueue(self, job: str, *args: Any) -> None:
        """Enqueue one job: `job` is `record` or `noop`."""

    async def enqueue_bulk(self, job: str, args: Sequence[JobArgs]) -> None:
        """Enqueue many jobs as fast as the client allows (before a worker starts)."""
        for one in args:
            await self.enqueue(job, *one)


def make_system(name: str, options: dict[str, Any] | None = None) -> System:
    options = options or {}
    if name == "herald":
        from bench.systems.herald_system import HeraldSystem

        return HeraldSystem(**options)
    if name == "arq":
        from bench.systems.arq_system import ArqSystem

        return ArqSystem(**options)
    if name == "saq":
        from bench.systems.saq_system import SaqSystem

        return SaqSystem(**options)
    raise ValueError(f"unknown system {name!r}")
