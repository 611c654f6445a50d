"""What a running job receives as its first argument.

The queue package knows nothing of the application: `resources` is whatever the runtime was
given (Herald passes its `Resources`), and a job says which with `JobContext[Resources]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class JobContext(Generic[R]):
    job_id: str
    queue: str
    function: str
    job_try: int
    enqueued_at: datetime
    resources: R
