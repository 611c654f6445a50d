"""Redis key names and the score layout of Herald's queues.

Each queue is an arq sorted set scored in milliseconds. A job due now is scored
`now - band offset`, so `high` jobs sort before every waiting `normal` job, which sort before
every waiting `low` job, while all of them are due (score <= now). Deferred jobs are scored
at their due time; when it comes they join the queue behind the waiting bands, in the low band.
"""

from __future__ import annotations

from herald.vocabulary import Priority

__all__ = ["Priority"]  # the queue's bands are the notification priorities

QUEUE_PREFIX = "herald:queue:"
# Published with a queue key when jobs due now are enqueued, so every process wakes its worker.
WAKE_CHANNEL = "herald:wake"

# Far more than any realistic backlog age, far less than the float precision limit.
BAND_MS = 1_000_000_000


BAND_OFFSET_MS = {Priority.HIGH: 2 * BAND_MS, Priority.NORMAL: BAND_MS, Priority.LOW: 0}


def queue_key(queue: str) -> str:
    return QUEUE_PREFIX + queue


def due_score(now_ms: int, priority: Priority) -> int:
    return now_ms - BAND_OFFSET_MS[priority]


def due_time_ms(score: float, now_ms: float) -> float:
    """The time a job became due, undoing the band offset of a due job's score."""
    if score <= now_ms - 1.5 * BAND_MS:
        return score + 2 * BAND_MS
    if score <= now_ms - 0.5 * BAND_MS:
        return score + BAND_MS
    return score
