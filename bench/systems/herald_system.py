"""Herald as `herald serve` runs it: `create_app(settings)` served by uvicorn in this loop.

The worker runtime is started by the app's lifespan, exactly as in production; the benchmark
jobs come from `JOB_MODULES=bench.jobs` and only the `bench` queue is consumed
(`WORKER_QUEUES=bench`), so Herald's own queues add no idle polling. In-process enqueue goes
through `app.state.resources.jobs`, the client the API uses, which wakes the worker at once;
`connect()` makes a separate `JobQueue`, which is what another replica would use.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from bench.env import CONCURRENCY, DATABASE_URL, QUEUE, REDIS_URL, free_port
from bench.systems import JobArgs, System

JOB_NAMES = {"record": "bench.record", "noop": "bench.noop"}
_BULK_CHUNK = 500


class HeraldSystem(System):
    name = "herald"

    def __init__(
        self,
        *,
        poll_delay: float = 0.05,
        log_level: str = "INFO",
        settings: dict[str, Any] | None = None,
    ) -> None:
        """`settings` overrides any other `Settings` field (e.g. `enable_api`, `worker_queues`)."""
        super().__init__(poll_delay=poll_delay, log_level=log_level, settings=settings or {})
        self.url = ""  # the HTTP server's base URL once started
        self._server: Any = None
        self._serving: asyncio.Task[None] | None = None
        self._jobs: Any = None
        self._redis: Any = None

    def settings(self) -> Any:
        from herald.config import Settings

        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": free_port(),
            "database_url": DATABASE_URL,
            "redis_url": REDIS_URL,
            "job_modules": ["bench.jobs"],
            "worker_queues": [QUEUE],
            "worker_concurrency": CONCURRENCY,
            "poll_delay_seconds": self.options["poll_delay"],
            "log_level": self.options["log_level"],
            "log_format": "json",
            "auto_migrate": False,
            "shutdown_grace_seconds": 2,
        }
        values.update(self.options["settings"])
        return Settings(_env_file=None, **values)

    async def start_worker(self) -> None:
        import uvicorn

        from herald.app import create_app
        from herald.server import HeraldServer

        settings = self.settings()
        app = create_app(settings)
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            lifespan="on",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        self._app = app
        self.url = f"http://127.0.0.1:{settings.port}"
        self._server = HeraldServer(config, app)
        self._serving = asyncio.create_task(self._server.serve())
        deadline = time.monotonic() + 30
        while not self._server.started:
            if self._serving.done():
                self._serving.result()
                raise RuntimeError("herald stopped before it started")
            if time.monotonic() > deadline:
                raise TimeoutError("herald did not start within 30 s")
            await asyncio.sleep(0.01)

    async def stop_worker(self) -> None:
        if self._server is None or self._serving is None:
            return
        self._server.should_exit = True
        await asyncio.wait_for(self._serving, timeout=30)

    def use_worker_client(self) -> None:
        self._jobs = self._app.state.resources.jobs

    async def connect(self) -> None:
        from redis.asyncio import Redis

        from herald.queue import JobQueue, load_jobs

        self._redis = Redis.from_url(REDIS_URL)
        self._jobs = JobQueue(self._redis, load_jobs(["bench.jobs"]))

    async def disconnect(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    async def enqueue(self, job: str, *args: Any) -> None:
        await self._jobs.enqueue(JOB_NAMES[job], *args)

    async def enqueue_bulk(self, job: str, args: Sequence[JobArgs]) -> None:
        from herald.queue import JobRequest

        name = JOB_NAMES[job]
        for start in range(0, len(args), _BULK_CHUNK):
            chunk = args[start : start + _BULK_CHUNK]
            await self._jobs.enqueue_many([JobRequest(name, one) for one in chunk])
