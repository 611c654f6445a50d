"""Delivering one attempt of one notification: claim, send, record.

The claim is one conditional UPDATE (`scheduled|queued|retrying -> sending`, attempts + 1, a
lease until now + the job timeout + a margin) that only the job for exactly this attempt can
win; a duplicate job (arq is at-least-once), a cancelled or finished notification, or a job
that came early finds nothing to claim and does nothing. So the provider is called at most
once per attempt, except when a worker dies between the provider's answer and our commit.

Outcomes: sent; retrying (transient error, budget left: exponential backoff with full jitter,
at least the provider's Retry-After); failed (permanent error, or budget spent). Each is a
status change plus an event row in one statement, conditional on still holding the claim.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from herald import metrics
from herald.channels import Message, PermanentError, Provider, ProviderResult, TransientError
from herald.config import Settings
from herald.errors import is_outage
from herald.logging import mask_address
from herald.notifications.service import enqueue_deliveries
from herald.queue import JobContext
from herald.resources import Resources

log = structlog.get_logger()

T = TypeVar("T")

# Each write below is one statement: the row's status change and its event row go in together
# (a data-modifying CTE), run outside an explicit transaction, so a claim or an outcome costs
# one round trip to Postgres instead of five (BEGIN, UPDATE, INSERT, COMMIT and the flush).

# A job may run up to 5 s before its row's due time (clock skew between hosts).
_CLAIM = text(
    """
    WITH claimed AS (
        UPDATE notifications
           SET status = 'sending', attempts = attempts + 1, updated_at = now(),
               lease_expires_at = now() + make_interval(secs => :lease), provider = :provider
         WHERE id = :id AND attempts = :attempt - 1
           AND status IN ('scheduled', 'queued', 'retrying')
           AND (next_attempt_at IS NULL OR next_attempt_at <= now() + interval '5 seconds')
        RETURNING id, channel, recipient, subject, body, html, data, template, attempts,
                  max_attempts, priority
    ), event AS (
        INSERT INTO notification_events (notification_id, status, attempt, detail, created_at)
        SELECT id, 'sending', attempts,
               'attempt ' || attempts || ' of ' || max_attempts || ' via ' || :provider, now()
          FROM claimed
    )
    SELECT * FROM claimed
    """
)

# Only while this attempt still holds the row: `sending`, with its attempt number.
_FINISH = text(
    """
    WITH finished AS (
        UPDATE notifications
           SET status = :status, updated_at = now(), lease_expires_at = NULL,
               next_attempt_at = :next_attempt_at, error = :error,
               provider_message_id = :provider_message_id, sent_at = :sent_at
         WHERE id = :id AND status = 'sending' AND attempts = :attempt
        RETURNING id, channel, priority, attempts, next_attempt_at
    ), event AS (
        INSERT INTO notification_events (notification_id, status, attempt, detail, created_at)
        SELECT id, :status, :attempt, :detail, now() FROM finished
    )
    SELECT * FROM finished
    """
)


@dataclass(frozen=True, slots=True)
class Claimed:
    id: uuid.UUID
    channel: str
    message: Message
    attempt: int
    max_attempts: int
    priority: str


def backoff_seconds(settings: Settings, attempt: int, retry_after: float | None) -> float:
    """Full jitter: uniform in [0, min(cap, base * factor^(attempt-1))], at least Retry-After."""
    ceiling = min(
        settings.retry_max_seconds,
        settings.retry_base_seconds * settings.retry_factor ** (attempt - 1),
    )
    delay = random.uniform(0, ceiling)  # noqa: S311 - jitter, not security
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.retry_max_seconds))
    return delay


def lease_seconds(settings: Settings, channel: str) -> float:
    return settings.job_timeout_for(channel) + settings.lease_margin_seconds


@dataclass(frozen=True, slots=True)
class Finished:
    """What the next attempt's job needs (the fields `delivery_job` reads)."""

    id: uuid.UUID
    channel: str
    priority: str
    attempts: int
    next_attempt_at: datetime | None


async def claim(
    connection: AsyncConnection, notification_id: str, attempt: int, lease: float, provider: str
) -> Claimed | None:
    row = (
        await connection.execute(
            _CLAIM,
            {"id": notification_id, "attempt": attempt, "lease": lease, "provider": provider},
        )
    ).first()
    if row is None:
        return None
    message = Message(
        notification_id=str(row.id),
        channel=row.channel,
        to=row.recipient,
        subject=row.subject,
        body=row.body,
        html=row.html,
        data=row.data,
        template=row.template,
    )
    return Claimed(row.id, row.channel, message, row.attempts, row.max_attempts, row.priority)


async def _finish(
    connection: AsyncConnection,
    claimed: Claimed,
    status: str,
    detail: str,
    *,
    next_attempt_at: datetime | None = None,
    error: str | None = None,
    provider_message_id: str | None = None,
    sent_at: datetime | None = None,
) -> Finished | None:
    """Move the row out of `sending` if this attempt still holds it; None if it lost it."""
    row = (
        await connection.execute(
            _FINISH,
            {
                "id": claimed.id,
                "attempt": claimed.attempt,
                "status": status,
                "detail": detail,
                "next_attempt_at": next_attempt_at,
                "error": error,
                "provider_message_id": provider_message_id,
                "sent_at": sent_at,
            },
        )
    ).first()
    if row is None:
        return None
    return Finished(row.id, row.channel, row.priority, row.attempts, row.next_attempt_at)


async def deliver(ctx: JobContext, notification_id: str, attempt: int) -> None:
    """The delivery job: one attempt of one notification."""
    resources: Resources = ctx.resources
    settings = resources.settings
    channel = ctx.queue
    provider: Provider = resources.providers[channel]
    # Leave a second before the job's own timeout for recording the outcome.
    deadline = time.monotonic() + settings.job_timeout_for(channel) - 1

    # Book the send slot before claiming: a job deferred here has spent no attempt.
    limiter = resources.rate_limiter
    slot = await limiter.reserve(channel) if limiter is not None else None

    async with resources.worker_autocommit_engine.connect() as connection:
        claimed = await claim(
            connection, notification_id, attempt, lease_seconds(settings, channel), provider.name
        )
    if claimed is None:
        log.info("delivery.skipped", reason="not claimable: done, cancelled or not due")
        return

    result: ProviderResult | None = None
    error: TransientError | PermanentError | None = None
    if limiter is not None and slot is not None:
        try:
            await limiter.wait_for(slot, deadline)
        except TransientError as exc:
            await _record(resources, claimed, provider.name, None, exc, deadline)
            return

    started = time.perf_counter()
    try:
        result = await provider.send(claimed.message)
    except (TransientError, PermanentError) as exc:
        error = exc
    except Exception as exc:  # a bug or an unexpected library error: retry, and say so
        log.exception("delivery.provider_crashed")
        error = TransientError(f"unexpected error: {type(exc).__name__}: {exc}")
    finally:
        elapsed = time.perf_counter() - started
        metrics.provider_latency.labels(channel, provider.name).observe(elapsed)

    await _record(resources, claimed, provider.name, result, error, deadline)


async def _with_db_retry(write: Callable[[], Awaitable[T]], deadline: float) -> T:
    """Run `write`, retrying while Postgres is unreachable, until `deadline` (monotonic).

    The provider has already accepted the message: giving up here would leave the row
    `sending` until its lease expires and the reconciler sends it again. Holding on to the
    outcome through a short outage keeps that duplicate from happening.
    """
    delay = 0.2
    while True:
        try:
            return await write()
        except Exception as exc:
            if not is_outage(exc) or time.monotonic() + delay > deadline:
                raise
            log.warning("delivery.record_retrying", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def _record(
    resources: Resources,
    claimed: Claimed,
    provider: str,
    result: ProviderResult | None,
    error: TransientError | PermanentError | None,
    deadline: float,
) -> None:
    settings = resources.settings
    masked = mask_address(claimed.message.to)
    # What the log says: never the provider's own words (they can quote the message).
    logged: dict[str, Any] = {}
    if result is not None:
        outcome = "sent"
        detail = f"{provider} accepted it" + (
            f" as {result.provider_message_id}" if result.provider_message_id else ""
        )
        if result.warning is not None:
            detail += f"; warning: {result.warning}"
            log.warning(
                "provider.unexpected_response",
                channel=claimed.channel,
                provider=provider,
                detail=result.warning,
            )
        status = "sent"
        values: dict[str, Any] = {
            "provider_message_id": result.provider_message_id,
            "sent_at": datetime.now(UTC),
        }
    elif isinstance(error, TransientError) and claimed.attempt < claimed.max_attempts:
        outcome = status = "retrying"
        delay = backoff_seconds(settings, claimed.attempt, error.retry_after)
        detail = f"attempt {claimed.attempt} failed: {error.reason}; retrying in {delay:.2f}s"
        logged = {"error": error.summary, "retry_in_seconds": round(delay, 2)}
        values = {
            "next_attempt_at": datetime.now(UTC) + timedelta(seconds=delay),
            "error": error.reason,
        }
    else:
        assert error is not None
        outcome = status = "failed"
        if isinstance(error, PermanentError):
            detail = error.reason
            logged = {"error": error.summary}
        else:
            detail = f"gave up after {claimed.attempt} attempts: {error.reason}"
            logged = {"error": f"gave up after {claimed.attempt} attempts: {error.summary}"}
        values = {"error": detail}

    async def write() -> Finished | None:
        async with resources.worker_autocommit_engine.connect() as connection:
            return await _finish(connection, claimed, status, detail, **values)

    finished = await _with_db_retry(write, deadline)
    if finished is None:
        # The reconciler took the row back (our lease expired) while the provider was busy.
        log.warning("delivery.lease_lost", outcome=outcome, to=masked)
        return
    metrics.notifications.labels(
        claimed.channel, provider, "retried" if outcome == "retrying" else outcome
    ).inc()
    log.info(
        f"notification.{outcome}",
        channel=claimed.channel,
        provider=provider,
        to=masked,
        attempt=claimed.attempt,
        **logged,
    )
    if outcome == "retrying":
        await enqueue_deliveries(resources.jobs, [finished])
