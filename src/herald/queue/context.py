"""What a running job receives as its first argument."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from herald.resources import Resources


@dataclass(frozen=True, slots=True)
class JobContext:
    job_id: str
    queue: str
    function: str
    job_try: int
    enqueued_at: datetime
    resources: Resources
