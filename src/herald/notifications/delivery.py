"""Delivering one attempt of one notification: claim, send, record.

The claim is one conditional UPDATE (`scheduled|queued|retrying -> sending`, attempts + 1, a
lease until now + the job timeout + a margin) that only the job for exactly this attempt can
win; a duplicate job (arq is at-least-once), a cancelled or finished notification, or a job
that came early finds nothing to claim and does nothing. So the provider is called at most
once per attempt, except when a worker dies between the provider's answer and our commit.

Outcomes: sent; retrying (transient error, budget left: exponential backoff with full jitter,
at least the provider's Retry-After); failed (permanent error, or budget spent). Each is a
status change plus an event row in one transaction, conditional on still holding the claim.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import structlog
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from herald import metrics
from herald.channels import Message, PermanentError, Provider, ProviderResult, TransientError
from herald.config import Settings
from herald.db.models import Notification, NotificationEvent
from herald.errors import is_outage
from herald.logging import mask_address
from herald.notifications.service import enqueue_deliveries
from herald.queue import JobContext
from herald.resources import Resources

log = structlog.get_logger()

T = TypeVar("T")

# A job may run up to 5 s before its row's due time (clock skew between hosts).
_CLAIM = text(
    """
    UPDATE notifications
       SET status = 'sending', attempts = attempts + 1, updated_at = now(),
           lease_expires_at = now() + make_interval(secs => :lease), provider = :provider
     WHERE id = :id AND attempts = :attempt - 1
       AND status IN ('scheduled', 'queued', 'retrying')
       AND (next_attempt_at IS NULL OR next_attempt_at <= now() + interval '5 seconds')
    RETURNING id, channel, recipient, subject, body, html, data, template, attempts,
              max_attempts, priority
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


async def claim(
    session: AsyncSession, notification_id: str, attempt: int, lease: float, provider: str
) -> Claimed | None:
    row = (
        await session.execute(
            _CLAIM,
            {"id": notification_id, "attempt": attempt, "lease": lease, "provider": provider},
        )
    ).first()
    if row is None:
        return None
    session.add(
        NotificationEvent(
            notification_id=row.id,
            status="sending",
            attempt=row.attempts,
            detail=f"attempt {row.attempts} of {row.max_attempts} via {provider}",
            created_at=datetime.now(UTC),
        )
    )
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
    session: AsyncSession, claimed: Claimed, status: str, detail: str, **values: object
) -> Notification | None:
    """Move the row out of `sending` if this attempt still holds it; None if it lost it."""
    now = datetime.now(UTC)
    finished = await session.scalar(
        update(Notification)
        .where(
            Notification.id == claimed.id,
            Notification.status == "sending",
            Notification.attempts == claimed.attempt,
        )
        .values(status=status, updated_at=now, lease_expires_at=None, **values)
        .returning(Notification)
    )
    if finished is not None:
        session.add(
            NotificationEvent(
                notification_id=claimed.id,
                status=status,
                attempt=claimed.attempt,
                detail=detail,
                created_at=now,
            )
        )
    return finished


async def deliver(ctx: JobContext, notification_id: str, attempt: int) -> None:
    """The delivery job: one attempt of one notification."""
    resources: Resources = ctx.resources
    settings = resources.settings
    session_maker: async_sessionmaker[AsyncSession] = resources.session_maker
    channel = ctx.queue
    provider: Provider = resources.providers[channel]
    # Leave a second before the job's own timeout for recording the outcome.
    deadline = time.monotonic() + settings.job_timeout_for(channel) - 1

    limiter = resources.rate_limiter
    if limiter is not None:
        await limiter.acquire(channel)

    async with session_maker() as session:
        claimed = await claim(
            session, notification_id, attempt, lease_seconds(settings, channel), provider.name
        )
        await session.commit()
    if claimed is None:
        log.info("delivery.skipped", reason="not claimable: done, cancelled or not due")
        return

    started = time.perf_counter()
    result: ProviderResult | None = None
    error: TransientError | PermanentError | None = None
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
    if result is not None:
        outcome = "sent"
        detail = f"{provider} accepted it" + (
            f" as {result.provider_message_id}" if result.provider_message_id else ""
        )
        status = "sent"
        values: dict[str, object] = {
            "provider_message_id": result.provider_message_id,
            "sent_at": datetime.now(UTC),
            "next_attempt_at": None,
            "error": None,
        }
    elif isinstance(error, TransientError) and claimed.attempt < claimed.max_attempts:
        outcome = status = "retrying"
        delay = backoff_seconds(settings, claimed.attempt, error.retry_after)
        detail = f"attempt {claimed.attempt} failed: {error.reason}; retrying in {delay:.2f}s"
        values = {
            "next_attempt_at": datetime.now(UTC) + timedelta(seconds=delay),
            "error": error.reason,
        }
    else:
        assert error is not None
        outcome = status = "failed"
        detail = (
            error.reason
            if isinstance(error, PermanentError)
            else f"gave up after {claimed.attempt} attempts: {error.reason}"
        )
        values = {"next_attempt_at": None, "error": detail}

    async def write() -> Notification | None:
        async with resources.session_maker() as session:
            finished = await _finish(session, claimed, status, detail, **values)
            await session.commit()
            return finished

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
        detail=detail,
    )
    if outcome == "retrying":
        await enqueue_deliveries(resources.jobs, [finished])
