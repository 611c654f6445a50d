"""One queue's worker loop: arq's `Worker`, woken in-process, instrumented, and supervised.

What we change in arq (see ARCHITECTURE.md section 2):

- `main()` waits on an `asyncio.Event` between polls instead of sleeping, so a job enqueued
  by this process, or a freed slot, starts work at once; other replicas' jobs are seen
  within `poll_delay`.
- Picking reads only due jobs that are not already running elsewhere and never more than
  there are free slots, so the next poll sees the newest high-priority jobs; and it claims
  them in the same Lua call (sets their in-progress keys, counts their tries, reads their
  payloads), where arq's `start_jobs` and `run_job` spend five round trips per job (WATCH,
  EXISTS, ZSCORE, MULTI/EXEC, then a pipeline) to do the same.
- A finished job's bookkeeping (arq's `finish_job`: its keys deleted, or its in-progress
  key freed when it is to run again) is written with that of the other jobs that finished in
  the same turn of the event loop, in one MULTI/EXEC (`herald.batching.Batcher`), not one
  transaction per job. A job's slot frees once its bookkeeping is written, as in arq.
- A picked job's in-progress key lives `IN_PROGRESS_LEASE_SECONDS` (6 s), refreshed every 2 s
  while it runs, instead of arq's job timeout + 10 s: after a SIGKILL, the jobs the process
  had picked but not yet claimed in Postgres are picked again within seconds (the claim in
  Postgres, not this key, is what keeps an attempt to one provider call).
- Every job runs through `_instrumented`, which binds log context, records metrics and
  enforces the job timeout itself (so a timeout is a failure, not a "cancellation").
- While the lag guard is engaged (`herald.queue.lag`), a poll takes no new jobs (one when
  none runs), so the API's requests come first.
- `SupervisedWorker` restarts the loop with capped exponential backoff when it raises (arq's
  loop dies on the first Redis error) and drains it on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix
from arq.jobs import deserialize_job_raw
from arq.utils import ms_to_datetime, timestamp_ms
from arq.worker import Retry, Worker, func

from herald import metrics
from herald.batching import Batcher
from herald.queue.context import JobContext
from herald.queue.keys import due_time_ms, queue_key
from herald.queue.lag import LagGuard
from herald.queue.registry import JobDefinition
from herald.queue.serialization import deserialize, serialize
from herald.redis_connection import redis_pool
from herald.reporting import report_exception

log = structlog.get_logger()

# arq's own try counter must never fail a job: Herald keeps its attempt budget in Postgres,
# and cancellations at shutdown also count as tries in arq.
_ARQ_MAX_TRIES = 1_000_000
# arq gets a little more time than the job's own timeout, so ours fires first.
_TIMEOUT_MARGIN_SECONDS = 5.0
# How long a picked job's in-progress key lives unless its worker refreshes it (every third of
# it, while the job runs): a job picked by a process that died is free again within this, not
# after arq's job timeout + 10 s.
IN_PROGRESS_LEASE_SECONDS = 6.0

_CLAIM_LUA = """
-- KEYS[1] queue; ARGV: now ms, how many ids to scan at most, how many to claim, in-progress
-- prefix, in-progress ttl ms, job prefix, retry prefix. Reads the head of the queue in small
-- pages, skipping jobs some worker already runs, and claims each free due job (sets its
-- in-progress key, counts the try as arq's run_job does) until it has as many as the caller
-- has free slots. Returns {id1, score1, payload1, try1, id2, ...}; a payload is nil when the
-- job's key expired.
local wanted = tonumber(ARGV[3])
local limit = tonumber(ARGV[2])
local page = math.max(wanted * 2, 16)
local claimed = {}
local offset = 0
while offset < limit do
  local entries = redis.call(
    'ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', offset, page)
  for i = 1, #entries, 2 do
    local id = entries[i]
    local key = ARGV[4] .. id
    if redis.call('EXISTS', key) == 0 then
      redis.call('SET', key, '1', 'PX', ARGV[5])
      local tries = redis.call('INCR', ARGV[7] .. id)
      redis.call('EXPIRE', ARGV[7] .. id, 88400)
      claimed[#claimed + 1] = id
      claimed[#claimed + 1] = entries[i + 1]
      claimed[#claimed + 1] = redis.call('GET', ARGV[6] .. id)
      claimed[#claimed + 1] = tries
      if #claimed >= wanted * 4 then return claimed end
    end
  end
  if #entries < page * 2 then return claimed end
  offset = offset + page
end
return claimed
"""


# A claimed job: its id, score, payload (None when its key expired) and try number.
Picked = tuple[bytes, bytes, bytes | None, int]


@dataclass(frozen=True, slots=True)
class _Done:
    """What a finished job leaves in Redis: arq's `finish_job`, for many jobs in one go.
    `finish` removes the job; otherwise it stays queued (cancelled at a drain: run again),
    `defer_ms` later when it asked to be retried."""

    job_id: str
    finish: bool
    defer_ms: int | None = None


def create_worker_redis(url: str, *, queue: str, client_name: str) -> ArqRedis:
    """A Redis client of the worker's own (arq's `close()` closes the pool it was given)."""
    pool = redis_pool(
        url,
        client_name=client_name,
        socket_connect_timeout=2,
        socket_timeout=10,
        health_check_interval=15,
    )
    return ArqRedis(
        pool,
        job_serializer=serialize,
        job_deserializer=deserialize,
        default_queue_name=queue_key(queue),
    )


class HeraldWorker(Worker):
    """arq's Worker with an event-driven poll loop and liveness bookkeeping."""

    def __init__(
        self,
        *args: Any,
        scan_limit: int = 1000,
        lag_guard: LagGuard | None = None,
        in_progress_lease: float = IN_PROGRESS_LEASE_SECONDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lag_guard = lag_guard
        self.in_progress_lease_s = in_progress_lease
        self._refreshed = time.monotonic()
        self.wake = asyncio.Event()
        self.stopping = False
        self.last_iteration = time.monotonic()
        self._scan_limit = scan_limit
        self._claim = self.pool.register_script(_CLAIM_LUA)
        self._done = Batcher(self._write_done, 500, "herald-job-bookkeeping")

    async def main(self) -> None:
        """Poll until `stop()`; returning (not cancellation) is the normal way out.

        Python 3.11's `asyncio.timeout` can swallow a cancellation that races with its own
        expiry, so a stop flag, not `Task.cancel()`, ends the loop.
        """
        self.ctx["redis"] = self.pool
        while not self.stopping:
            self.wake.clear()
            await self._poll_iteration()
            self.last_iteration = time.monotonic()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_delay_s):
                    await self.wake.wait()

    def stop(self) -> None:
        self.stopping = True
        self.allow_pick_jobs = False
        self.wake.set()

    async def _poll_iteration(self) -> None:
        free = self.max_jobs - self.job_counter
        if self.lag_guard is not None:
            free = self.lag_guard.free_slots(free, self.job_counter)
        if self.allow_pick_jobs and free > 0:
            await self._run_claimed(await self.claim(free))
        for job_id, task in list(self.tasks.items()):
            if task.done():
                del self.tasks[job_id]
                task.result()
        await self._refresh_in_progress()
        await self.heart_beat()

    async def claim(self, free: int) -> list[Picked]:
        """Claim up to `free` due jobs (one Lua call): (id, score, payload, try) of each."""
        claimed = await self._claim(
            keys=[self.queue_name],
            args=[
                int(time.time() * 1000),
                self._scan_limit,
                free,
                in_progress_key_prefix,
                int(self.in_progress_lease_s * 1000),
                job_key_prefix,
                retry_key_prefix,
            ],
        )
        return list(zip(claimed[::4], claimed[1::4], claimed[2::4], claimed[3::4], strict=True))

    async def _refresh_in_progress(self) -> None:
        """Extend the in-progress keys of this worker's running jobs (one round trip)."""
        if time.monotonic() - self._refreshed < self.in_progress_lease_s / 3:
            return
        self._refreshed = time.monotonic()
        running = [job_id for job_id, task in self.tasks.items() if not task.done()]
        if running:
            ttl = int(self.in_progress_lease_s * 1000)
            async with self.pool.pipeline(transaction=False) as pipe:
                for job_id in running:
                    pipe.pexpire(in_progress_key_prefix + job_id, ttl)
                await pipe.execute()

    async def _run_claimed(self, claimed: list[Picked]) -> None:
        """Start the jobs the claim script marked in progress for this worker (arq's
        `start_jobs` after its claim). Any left over, because the queue was paused or the
        drain began meanwhile, are handed back at once rather than when their claim expires."""
        for index, (job_id_b, score, payload, job_try) in enumerate(claimed):
            if self.job_counter >= self.max_jobs or not self.allow_pick_jobs:
                left = [in_progress_key_prefix + j.decode() for j, *_ in claimed[index:]]
                await self.pool.delete(*left)
                return
            await self.sem.acquire()  # free at once: no more were claimed than slots free
            self.job_counter += 1
            job_id = job_id_b.decode()
            task = self.loop.create_task(
                self._run_job(job_id, int(float(score.decode())), payload, int(job_try))
            )
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = task

    async def _run_job(self, job_id: str, score: int, payload: bytes | None, job_try: int) -> None:
        """arq's `run_job` for a job the claim script already read: run it, then leave its
        bookkeeping to `_done`. Herald keeps its attempt budget in Postgres, so there is no
        `max_tries` check here, and no results are kept (`keep_result=0`)."""
        done = _Done(job_id, finish=True)
        try:
            if payload is None:
                log.warning("job.expired", job_id=job_id)
                return
            try:
                name, args, kwargs, enqueue_try, enqueue_ms = deserialize_job_raw(
                    payload, deserializer=self.job_deserializer
                )
            except Exception:
                log.exception("job.undecodable", job_id=job_id)
                return
            function = self.functions.get(name)
            if function is None:
                log.warning("job.unknown_function", job_id=job_id, function=name)
                return
            if enqueue_try and enqueue_try > job_try:
                job_try = enqueue_try
                await self.pool.setex(retry_key_prefix + job_id, 88400, str(job_try))
            ctx = {
                **self.ctx,
                "job_id": job_id,
                "job_try": job_try,
                "enqueue_time": ms_to_datetime(enqueue_ms),
                "score": score,
            }
            try:
                await function.coroutine(ctx, *args, **kwargs)
            except Retry as retry:  # run again later, as arq does: its score moves on
                later = retry.defer_score
                defer_ms = later + (timestamp_ms() - score) if later else None
                done = _Done(job_id, finish=False, defer_ms=defer_ms)
            except asyncio.CancelledError:  # drained: leave it queued, to run again elsewhere
                done = _Done(job_id, finish=False)
            except Exception:  # noqa: S110 - `instrumented` has logged, counted and reported it
                pass
        finally:
            await asyncio.shield(self._done.submit(done))

    async def _write_done(self, items: list[_Done]) -> list[None]:
        """arq's `finish_job` for every job that finished in one turn, in one MULTI/EXEC."""
        async with self.pool.pipeline(transaction=True) as tr:
            deleted: list[str] = []
            for item in items:
                deleted.append(in_progress_key_prefix + item.job_id)
                if item.finish:
                    deleted += [retry_key_prefix + item.job_id, job_key_prefix + item.job_id]
                    tr.zrem(self.queue_name, item.job_id)
                elif item.defer_ms:
                    tr.zincrby(self.queue_name, item.defer_ms, item.job_id)
            tr.delete(*deleted)
            await tr.execute()
        return [None] * len(items)

    def _release_sem_dec_counter_on_complete(self) -> None:
        super()._release_sem_dec_counter_on_complete()
        self.wake.set()

    @property
    def running(self) -> int:
        return sum(not task.done() for task in self.tasks.values())

    async def wait_idle(self) -> None:
        """Return once no job of this worker is running."""
        pending = [task for task in self.tasks.values() if not task.done()]
        if pending:
            await asyncio.wait(pending)


def instrumented(
    definition: JobDefinition, timeout_seconds: float, resources: object
) -> Callable[..., Awaitable[Any]]:
    """Wrap a job function with log context, metrics and its timeout, as arq calls it."""
    queue, name = definition.queue, definition.name
    labels = (queue, name)

    async def run(ctx: dict[str, Any], *args: Any) -> Any:
        started = time.time()
        job_id: str = ctx["job_id"]
        due_ms = max(
            ctx["enqueue_time"].timestamp() * 1000, due_time_ms(ctx["score"], started * 1000)
        )
        metrics.job_pickup_latency.labels(queue).observe(max(started - due_ms / 1000, 0))
        metrics.jobs_started.labels(*labels).inc()
        in_flight = metrics.jobs_in_flight.labels(*labels)
        in_flight.inc()
        structlog.contextvars.bind_contextvars(
            job_id=job_id,
            queue=queue,
            function=name,
            **dict(zip(definition.log_args, args, strict=False)),
        )
        log.debug("job.started", job_try=ctx["job_try"])
        job_ctx = JobContext(
            job_id=job_id,
            queue=queue,
            function=name,
            job_try=ctx["job_try"],
            enqueued_at=ctx["enqueue_time"],
            resources=resources,
        )
        outcome = "failed"
        try:
            async with asyncio.timeout(timeout_seconds):
                result = await definition.function(job_ctx, *args)
        except Retry:
            outcome = "retried"
            metrics.jobs_retried.labels(*labels).inc()
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"
            metrics.jobs_cancelled.labels(*labels).inc()
            raise
        except TimeoutError:
            metrics.jobs_failed.labels(*labels).inc()
            log.error("job.timed_out", timeout_seconds=timeout_seconds)
            raise
        except Exception as exc:
            metrics.jobs_failed.labels(*labels).inc()
            log.exception("job.crashed")
            report_exception(exc)
            raise
        else:
            outcome = "succeeded"
            metrics.jobs_succeeded.labels(*labels).inc()
            return result
        finally:
            duration = time.time() - started
            in_flight.dec()
            metrics.job_duration.labels(*labels).observe(duration)
            took = round(duration * 1000, 1)
            if outcome == "succeeded":  # the job's own line (`notification.sent`...) says it
                log.debug("job.finished", outcome=outcome, duration_ms=took)
            else:
                log.info("job.finished", outcome=outcome, duration_ms=took)

    return run


def build_worker(
    *,
    queue: str,
    definitions: list[JobDefinition],
    redis: ArqRedis,
    max_jobs: int,
    timeout_seconds: float,
    poll_delay: float,
    resources: object,
    lag_guard: LagGuard | None = None,
    in_progress_lease: float = IN_PROGRESS_LEASE_SECONDS,
) -> HeraldWorker:
    functions = []
    for definition in definitions:
        timeout = definition.timeout_seconds or timeout_seconds
        functions.append(
            func(
                instrumented(definition, timeout, resources),  # type: ignore[arg-type]
                name=definition.name,
                timeout=timeout + _TIMEOUT_MARGIN_SECONDS,
                keep_result=0,
                max_tries=_ARQ_MAX_TRIES,
            )
        )
    return HeraldWorker(
        functions,
        queue_name=queue_key(queue),
        redis_pool=redis,
        handle_signals=False,
        max_jobs=max_jobs,
        job_timeout=timeout_seconds + _TIMEOUT_MARGIN_SECONDS,
        keep_result=0,
        poll_delay=poll_delay,
        max_tries=_ARQ_MAX_TRIES,
        job_serializer=serialize,
        job_deserializer=deserialize,
        log_results=False,
        lag_guard=lag_guard,
        in_progress_lease=in_progress_lease,
    )
