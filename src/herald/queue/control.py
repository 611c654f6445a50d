"""Operator control of the queues: pause and resume (kept in Postgres), and process heartbeats.

Pausing is a row in `paused_queues`, so it survives restarts of Herald and of Redis. Every
worker process re-reads the paused set twice a second and stops or resumes picking from
those queues; jobs already running finish. Heartbeats are a Redis hash of the processes
alive now (host, role, queues, started, last seen), refreshed every two seconds, for the
dashboard; the same beat goes to Postgres (`worker_processes`), where the reconciler reads it
to take back the deliveries of a process that died.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from herald.db.models import PausedQueue, WorkerProcess

PROCESSES_KEY = "herald:processes"
HEARTBEAT_SECONDS = 2.0


def beat_seconds(recovery_seconds: float) -> float:
    """How often a worker process beats in Postgres: every `HEARTBEAT_SECONDS`, or more often
    when `RECOVERY_SECONDS` is short, so that a silence of `DEAD_AFTER` of it is always
    three missed beats (see `herald.notifications.reconciler`)."""
    return min(HEARTBEAT_SECONDS, recovery_seconds / 5)


# A process not seen for this long is gone (crashed or stopped without saying so).
PROCESS_GONE_SECONDS = 15.0


async def pause_queue(session: AsyncSession, queue: str, by: str | None = None) -> None:
    await session.execute(
        insert(PausedQueue).values(queue=queue, paused_by=by).on_conflict_do_nothing()
    )


async def resume_queue(session: AsyncSession, queue: str) -> None:
    await session.execute(delete(PausedQueue).where(PausedQueue.queue == queue))


async def paused_queues(session: AsyncSession) -> set[str]:
    return set((await session.scalars(select(PausedQueue.queue))).all())


async def beat(session: AsyncSession, process_id: uuid.UUID, instance: str) -> None:
    """This worker process is alive (its row in `worker_processes`, refreshed every
    `beat_seconds`)."""
    await session.execute(
        insert(WorkerProcess)
        .values(id=process_id, instance=instance, last_seen=func.now())
        .on_conflict_do_update(index_elements=["id"], set_={"last_seen": func.now()})
    )


async def end_beat(session: AsyncSession, process_id: uuid.UUID) -> None:
    """This worker process has stopped: what it still held can be taken back at once."""
    await session.execute(delete(WorkerProcess).where(WorkerProcess.id == process_id))


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    instance: str
    host: str
    pid: int
    role: str
    queues: list[str]
    started: float
    last_seen: float


async def write_heartbeat(redis: Redis, info: ProcessInfo) -> None:
    payload = json.dumps(
        {
            "instance": info.instance,
            "host": info.host,
            "pid": info.pid,
            "role": info.role,
            "queues": info.queues,
            "started": info.started,
            "last_seen": time.time(),
        }
    )
    await redis.hset(PROCESSES_KEY, info.instance, payload)  # type: ignore[misc]


async def remove_heartbeat(redis: Redis, instance: str) -> None:
    await redis.hdel(PROCESSES_KEY, instance)  # type: ignore[misc]


async def live_processes(redis: Redis) -> list[ProcessInfo]:
    """Processes seen within the last 15 seconds; older entries are pruned."""
    now = time.time()
    raw: dict[bytes, bytes] = await redis.hgetall(PROCESSES_KEY)  # type: ignore[misc]
    alive: list[ProcessInfo] = []
    stale: list[str] = []
    for field, value in raw.items():
        entry = json.loads(value)
        if now - entry["last_seen"] > PROCESS_GONE_SECONDS:
            stale.append(field.decode())
            continue
        alive.append(ProcessInfo(**entry))
    if stale:
        await redis.hdel(PROCESSES_KEY, *stale)  # type: ignore[misc]
    return sorted(alive, key=lambda p: p.started)
