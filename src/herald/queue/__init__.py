"""Everything that touches arq. No other package imports arq directly."""

from arq.worker import Retry

from herald.queue.client import JobQueue, JobRequest
from herald.queue.context import JobContext
from herald.queue.keys import Priority
from herald.queue.registry import JobDefinition, JobRegistry, job, job_name, load_jobs, registry
from herald.queue.runtime import LoopHealth, WorkerRuntime, select_queues

__all__ = [
    "JobContext",
    "JobDefinition",
    "JobQueue",
    "JobRegistry",
    "JobRequest",
    "LoopHealth",
    "Priority",
    "Retry",
    "WorkerRuntime",
    "job",
    "job_name",
    "load_jobs",
    "registry",
    "select_queues",
]
