"""Deliveries' claims and outcomes written in batches: one statement for many attempts.

Each delivery job still runs alone (its own claim, its own provider call, its own outcome),
but it hands its claim and its outcome to a `herald.batching.Batcher`, which writes whatever
has gathered in one statement (`transitions.claim_many`, `transitions.finish_many`) and
answers each job with its own row (the jobs a worker picked in one poll start in the same
turn of the event loop, so their claims go together).

What the guarantees rely on is unchanged: a claim per (notification, attempt) that only
that attempt's job can win (a pair given twice in one batch is answered to one job only, the
other finds nothing to claim), the event row with each status change (same statement), and
a failure of the statement reaching every job of the batch, each of which then retries its
own write (`delivery._with_db_retry`) or gives up as it did alone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row

from herald.batching import Batcher
from herald.channels import Message
from herald.notifications import transitions

if TYPE_CHECKING:
    from herald.resources import Resources


@dataclass(frozen=True, slots=True)
class Claimed:
    id: uuid.UUID
    channel: str
    message: Message
    attempt: int
    max_attempts: int
    priority: str


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    notification_id: str
    attempt: int
    # The channel's: how long the claim holds (seconds), and the provider it goes to.
    lease: float
    provider: str


@dataclass(frozen=True, slots=True)
class Finished:
    outcome: transitions.Outcome
    # A retry: enqueue the next attempt's job once the outcome is durable.
    again: bool


class DeliveryBatches:
    """The process's batchers: claims (of every channel: each row has its own lease and
    provider, so the queues' claims share statements), outcomes."""

    def __init__(self, resources: Resources) -> None:
        self._resources = resources
        size = resources.settings.delivery_batch_max
        self.claim: Batcher[ClaimRequest, Claimed | None] = Batcher(
            self._claim_batch, size, "herald-delivery-claims"
        )
        self.finish: Batcher[Finished, transitions.Moved | None] = Batcher(
            self._finish_batch, size, "herald-delivery-outcomes"
        )

    async def _claim_batch(self, items: list[ClaimRequest]) -> list[Claimed | None]:
        keys: list[tuple[uuid.UUID, int] | None] = []
        wanted: list[transitions.Wanted] = []
        for item in items:
            try:
                notification_id = uuid.UUID(item.notification_id)
            except ValueError:  # not a notification id: nothing to claim
                keys.append(None)
                continue
            keys.append((notification_id, item.attempt))
            wanted.append(
                transitions.Wanted(notification_id, item.attempt, item.lease, item.provider)
            )
        runtime = self._resources.runtime
        async with self._resources.worker_unit_of_work() as uow:
            won = await transitions.claim_many(
                uow.connection, wanted, runtime.process_id if runtime is not None else None
            )
            uow.publish([moved.event for _, moved in won.values()])
        # `pop`: a pair asked for twice (a duplicate job) is answered to its first job only.
        return [_claimed(*won.pop(key)) if key in won else None for key in keys]

    async def _finish_batch(self, items: list[Finished]) -> list[transitions.Moved | None]:
        async with self._resources.worker_unit_of_work() as uow:
            moved = await transitions.finish_many(
                uow.connection, _first_of_each([item.outcome for item in items])
            )
            results = [
                moved.pop((item.outcome.notification_id, item.outcome.attempt), None)
                for item in items
            ]
            uow.publish([m.event for m in results if m is not None])
            uow.deliver(
                [m for m, item in zip(results, items, strict=True) if m is not None and item.again]
            )
        return results


def _first_of_each(outcomes: list[transitions.Outcome]) -> list[transitions.Outcome]:
    """One outcome per attempt (only one job can hold an attempt; this keeps it so)."""
    seen: set[tuple[uuid.UUID, int]] = set()
    unique = []
    for outcome in outcomes:
        key = (outcome.notification_id, outcome.attempt)
        if key not in seen:
            seen.add(key)
            unique.append(outcome)
    return unique


def _claimed(row: Row[Any], moved: transitions.Moved) -> Claimed:
    message = Message(
        notification_id=str(moved.id),
        channel=moved.channel,
        to=row.recipient,
        subject=row.subject,
        body=row.body,
        html=row.html,
        data=row.data,
        template=row.template,
    )
    return Claimed(
        moved.id, moved.channel, message, moved.attempts, row.max_attempts, moved.priority
    )
