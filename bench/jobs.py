"""Herald's benchmark jobs, loaded into the runtime with `JOB_MODULES=bench.jobs`.

They run on their own queue (`bench`) and record into the worker process's `RECORDER`.
"""

from __future__ import annotations

from bench.env import QUEUE
from bench.recorder import RECORDER
from herald.queue import JobContext, job

RECORD = "bench.record"
NOOP = "bench.noop"


@job(queue=QUEUE, name=RECORD)
async def record(ctx: JobContext, enqueued_at: float, n: int) -> None:
    RECORDER.started(enqueued_at, n)


@job(queue=QUEUE, name=NOOP)
async def noop(ctx: JobContext, n: int) -> None:
    RECORDER.noop_started()
    RECORDER.noop_finished()
