"""The worker runtime: one supervised arq worker loop per queue, inside the app's event loop.

`WorkerRuntime.start()` builds every worker in the running loop (with `handle_signals=False`,
so SIGTERM stays the HTTP server's) and runs each under `SupervisedWorker`, which restarts a
dead loop with capped exponential backoff. `drain(grace)` is the graceful shutdown arq does
not have: stop picking, let running jobs finish within the grace period, then cancel what is
left; arq puts cancelled jobs back on their queue, so they run again on another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal

import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herald import metrics
from herald.config import Settings
from herald.errors import is_outage
from herald.queue.client import JobQueue
from herald.queue.control import (
    ProcessInfo,
    beat,
    beat_seconds,
    end_beat,
    paused_queues,
    remove_heartbeat,
    write_heartbeat,
)
from herald.queue.keys import WAKE_CHANNEL, queue_key
from herald.queue.lag import LagGuard
from herald.queue.registry import JobRegistry
from herald.queue.worker import HeraldWorker, build_worker, create_worker_redis
from herald.reporting import report_exception

log = structlog.get_logger()

LoopState = Literal["starting", "running", "restarting", "stopped"]

# A loop that has not finished an iteration for this long is reported as wedged.
_WEDGED_AFTER_SECONDS = 60.0
# How often pause/resume is re-read: every replica follows within a second.
_CONTROL_INTERVAL_SECONDS = 0.5
# How long a loop may take to notice it should stop before it is cancelled.
_STOP_TIMEOUT_SECONDS = 12.0
# A loop that ran this long before failing starts its backoff from the beginning again.
_HEALTHY_RUN_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class LoopHealth:
    queue: str
    state: LoopState
    alive: bool
    running_jobs: int
    restarts: int
    seconds_since_iteration: float


class SupervisedWorker:
    """Runs one queue's worker loop and brings it back when it dies."""

    def __init__(self, queue: str, worker: HeraldWorker, max_backoff: float) -> None:
        self.queue = queue
        self.worker = worker
        self.state: LoopState = "starting"
        self.restarts = 0
        self._max_backoff = max_backoff
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"herald-worker-{self.queue}")

    async def _supervise(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            started = time.monotonic()
            self.state = "running"
            metrics.worker_loop_up.labels(self.queue).set(1)
            try:
                await self.worker.main()
                break  # main() returns only after stop()
            except Exception as exc:  # arq's loop dies on any Redis error: restart it
                metrics.worker_loop_up.labels(self.queue).set(0)
                if self._stopping.is_set():
                    break
                if time.monotonic() - started > _HEALTHY_RUN_SECONDS:
                    backoff = 0.5
                self.state = "restarting"
                self.restarts += 1
                metrics.worker_restarts.labels(self.queue).inc()
                if not is_outage(exc):  # Redis going away is not a bug; anything else is
                    report_exception(exc)
                log.warning(
                    "worker.restarting",
                    queue=self.queue,
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in_seconds=backoff,
                    restarts=self.restarts,
                )
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(backoff):
                        await self._stopping.wait()
                backoff = min(backoff * 2, self._max_backoff)
        self.state = "stopped"
        metrics.worker_loop_up.labels(self.queue).set(0)

    def wake(self, source: Literal["local", "pubsub", "control"]) -> None:
        if source != "control":
            metrics.worker_wakeups.labels(self.queue, source).inc()
        self.worker.wake.set()

    def stop_picking(self) -> None:
        self.worker.allow_pick_jobs = False

    async def wait_idle(self) -> None:
        await self.worker.wait_idle()

    async def close(self) -> None:
        """Stop the loop, cancel jobs still running (arq re-queues them), close the pool."""
        self._stopping.set()
        self.worker.stop()
        if self._task is not None:
            # The loop returns within one Redis call; cancel it only if Redis hangs.
            _, pending = await asyncio.wait({self._task}, timeout=_STOP_TIMEOUT_SECONDS)
            for task in pending:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        cancelled = self.worker.running
        try:
            # close() cancels running jobs, waits for arq to put them back, closes the pool;
            # it can itself raise CancelledError in a narrow race, or fail if Redis is gone.
            await self.worker.close()
        except (asyncio.CancelledError, Exception) as exc:
            log.warning("worker.close_failed", queue=self.queue, error=repr(exc))
            with contextlib.suppress(Exception):
                await self.worker.pool.aclose(close_connection_pool=True)
        if cancelled:
            log.warning("worker.jobs_requeued", queue=self.queue, jobs=cancelled)
        self.state = "stopped"

    def health(self) -> LoopHealth:
        since = time.monotonic() - self.worker.last_iteration
        task_alive = self._task is not None and not self._task.done()
        wedged = self.state == "running" and since > _WEDGED_AFTER_SECONDS
        return LoopHealth(
            queue=self.queue,
            state=self.state,
            alive=task_alive and not wedged,
            running_jobs=self.worker.running,
            restarts=self.restarts,
            seconds_since_iteration=round(since, 3),
        )


class WorkerRuntime:
    """All of this process's worker loops. `resources` reaches every job as
    `ctx.resources` (the runtime never looks inside it)."""

    def __init__(
        self,
        settings: Settings,
        registry: JobRegistry,
        jobs: JobQueue,
        resources: object,
        *,
        client_name: str,
        redis: Redis,
        session_maker: async_sessionmaker[AsyncSession],
        process: ProcessInfo,
    ) -> None:
        self._settings = settings
        self._registry = registry
        self._jobs = jobs
        self._resources = resources
        self._client_name = client_name
        self._redis = redis
        self._session_maker = session_maker
        self._process = process
        self.paused: set[str] = set()
        # This process's id in `worker_processes` and in the leases it takes; new per start, so
        # a restarted container with the same host name and pid is another process.
        self.process_id = uuid.uuid4()
        # Since when (monotonic) every heartbeat to Postgres has succeeded on time; None while
        # they fail. A beat that was slow or came late (Postgres stalled: the other processes'
        # beats were held up too) starts it again, so that the reconciler does not take their
        # stale heartbeats for deaths.
        self.beating_since: float | None = None
        self.beat_every = beat_seconds(settings.recovery_seconds)
        self._beaten_at: float | None = None
        self.queues = select_queues(settings, registry)
        self.workers: dict[str, SupervisedWorker] = {}
        self._periodic: list[tuple[str, float, Callable[[], Coroutine[Any, Any, object]]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._wake_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.draining = False
        self._drained = asyncio.Event()
        # Set by the lifespan before `start()`: the workers then yield to the API's requests.
        self.lag_guard: LagGuard | None = None

    def add_periodic(
        self,
        name: str,
        interval_seconds: float,
        run_once: Callable[[], Coroutine[Any, Any, object]],
    ) -> None:
        """Run `run_once()` every `interval_seconds` in the worker role, until the drain.

        An exception is logged and the next run happens on time. The drain waits for a run in
        progress to finish rather than cancelling it halfway through a query.
        """
        self._periodic.append((name, interval_seconds, run_once))

    async def _every(
        self, name: str, interval: float, run_once: Callable[[], Coroutine[Any, Any, object]]
    ) -> None:
        while not self._stopping.is_set():
            try:
                await run_once()
            except Exception as exc:  # Postgres or Redis down: try again next interval
                log.warning(f"{name}.failed", error=f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._stopping.wait()

    async def start(self) -> None:
        settings = self._settings
        await self._beat()  # before the first claim names this process
        for queue in self.queues:
            redis = create_worker_redis(
                settings.redis_url, queue=queue, client_name=f"{self._client_name}:{queue}"
            )
            worker = build_worker(
                queue=queue,
                definitions=self._registry.for_queue(queue),
                redis=redis,
                max_jobs=settings.concurrency_for(queue),
                timeout_seconds=settings.job_timeout_for(queue),
                poll_delay=settings.poll_delay_seconds,
                resources=self._resources,
                lag_guard=self.lag_guard,
            )
            supervised = SupervisedWorker(queue, worker, settings.worker_restart_max_seconds)
            supervised.start()
            self.workers[queue] = supervised
        if self.lag_guard is not None:
            self.lag_guard.on_release(self._wake_all)
        self._jobs.add_listener(self._wake)
        self._tasks.append(asyncio.create_task(self._maintain(), name="herald-queue-control"))
        self._wake_task = asyncio.create_task(self._follow_wakes(), name="herald-queue-wake")
        self._tasks.append(self._wake_task)
        for name, interval, run_once in self._periodic:
            task = asyncio.create_task(self._every(name, interval, run_once), name=f"herald-{name}")
            self._tasks.append(task)
        log.info("workers.started", queues=self.queues)

    async def _beat(self) -> None:
        """Heartbeat to Postgres; `beating_since` says for how long it has been unbroken."""
        started = time.monotonic()
        try:
            async with self._session_maker() as session, session.begin():
                await beat(session, self.process_id, self._process.instance)
        except Exception as exc:  # Postgres down: the reconciler must not trust heartbeats
            self.beating_since = None
            self._beaten_at = None
            log.debug("queues.heartbeat_failed", error=repr(exc))
            return
        now = time.monotonic()
        slow = now - started > self.beat_every
        late = self._beaten_at is not None and now - self._beaten_at > 2 * self.beat_every
        if self.beating_since is None or slow or late:
            self.beating_since = now
        self._beaten_at = now

    async def _maintain(self) -> None:
        """Follow pause/resume within half a second, and heartbeat every `beat_seconds`."""
        look_every = min(_CONTROL_INTERVAL_SECONDS, self.beat_every / 2)
        last_beat = 0.0
        while not self._stopping.is_set():
            try:
                async with self._session_maker() as session:
                    self._apply_pause(await paused_queues(session))
            except Exception as exc:  # Postgres down: keep the last known state
                log.debug("queues.pause_state_unavailable", error=repr(exc))
            if time.monotonic() - last_beat >= self.beat_every:
                await self._beat()
                try:
                    await write_heartbeat(self._redis, self._process)
                    last_beat = time.monotonic()
                except Exception as exc:  # Redis down: the worker loops say so already
                    log.debug("queues.heartbeat_failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(look_every):
                    await self._stopping.wait()

    async def _follow_wakes(self) -> None:
        """Wake a worker when another process enqueues on its queue (Redis pub/sub).

        Polling every `POLL_DELAY_SECONDS` stays as the safety net: while this subscription
        is down (Redis restarting), jobs are still picked up, only a little later.
        """
        by_key = {queue_key(queue): queue for queue in self.workers}
        backoff = 0.5
        while not self._stopping.is_set():
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(WAKE_CHANNEL)
                backoff = 0.5
                while not self._stopping.is_set():
                    message = await pubsub.get_message(timeout=0.5)
                    if message is not None:
                        queue = by_key.get(message["data"].decode())
                        if queue is not None:
                            self.workers[queue].wake("pubsub")
            except Exception as exc:  # Redis down: polling carries on; resubscribe later
                log.debug("queues.wake_subscription_lost", error=repr(exc))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(backoff):
                        await self._stopping.wait()
                backoff = min(backoff * 2, self._settings.worker_restart_max_seconds)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _apply_pause(self, paused: set[str]) -> None:
        if self.draining:
            return
        for queue, worker in self.workers.items():
            if queue in paused and queue not in self.paused:
                log.info("queue.paused", queue=queue)
            elif queue not in paused and queue in self.paused:
                log.info("queue.resumed", queue=queue)
            worker.worker.allow_pick_jobs = queue not in paused
            if queue not in paused:
                worker.wake("control")
        self.paused = paused & set(self.workers)

    def _wake_all(self) -> None:
        for worker in self.workers.values():
            worker.wake("control")

    def _wake(self, queue: str) -> None:
        worker = self.workers.get(queue)
        if worker is not None:
            worker.wake("local")

    async def drain(self, grace_seconds: float) -> None:
        """Stop picking, wait up to `grace_seconds` for running jobs, then cancel the rest.

        Idempotent: the server's signal handler and the lifespan both call it.
        """
        if self.draining:
            await self._drained.wait()
            return
        self.draining = True
        self._jobs.remove_listener(self._wake)
        if self._wake_task is not None:
            # Only a listener, blocked in a read for up to half a second: nothing to finish.
            self._wake_task.cancel()
        for worker in self.workers.values():
            worker.stop_picking()
        running = sum(w.worker.running for w in self.workers.values())
        log.info("workers.draining", running_jobs=running, grace_seconds=grace_seconds)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_seconds):
                await asyncio.gather(*(w.wait_idle() for w in self.workers.values()))
        # Background tasks stop at their next check; cancel only one stuck on a hung call.
        self._stopping.set()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=_STOP_TIMEOUT_SECONDS)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await remove_heartbeat(self._redis, self._process.instance)
        with contextlib.suppress(Exception):
            async with self._session_maker() as session, session.begin():
                await end_beat(session, self.process_id)
        await asyncio.gather(*(w.close() for w in self.workers.values()))
        self._drained.set()
        log.info("workers.stopped")

    def health(self) -> list[LoopHealth]:
        return [worker.health() for worker in self.workers.values()]


def select_queues(settings: Settings, registry: JobRegistry) -> list[str]:
    """The queues this process consumes: `WORKER_QUEUES`, or every registered queue."""
    known = registry.queues
    if not settings.worker_queues:
        return known
    unknown = sorted(set(settings.worker_queues) - set(known))
    if unknown:
        raise ValueError(
            f"WORKER_QUEUES names unknown queues {', '.join(unknown)}; known: {', '.join(known)}"
        )
    return list(dict.fromkeys(settings.worker_queues))
