"""Delivering one attempt of one notification: claim, send, record.

Status changes go through `transitions`: the claim and the outcome are each written in a
batch with those of the other deliveries running at the moment (`notifications.batches`: one
statement per batch, each row with its event row), inside a unit of work over an autocommit
connection, which publishes the events and enqueues a retry's next attempt once the
statement is durable.

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
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import structlog

from herald import metrics
from herald.channels import (
    AddressGone,
    PermanentError,
    Provider,
    ProviderResult,
    TransientError,
)
from herald.config import Settings
from herald.errors import is_outage
from herald.logging import mask_address
from herald.messages.fallback import after_failed_for_good
from herald.messages.recipient_hooks import forget_gone_address
from herald.notifications import transitions
from herald.notifications.batches import Claimed, ClaimRequest, Finished
from herald.queue import JobContext
from herald.reporting import report_exception
from herald.resources import Resources

log = structlog.get_logger()

T = TypeVar("T")


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


async def deliver(ctx: JobContext[Resources], notification_id: str, attempt: int) -> None:
    """The delivery job: one attempt of one notification."""
    resources = ctx.resources
    settings = resources.settings
    channel = ctx.queue
    provider: Provider = resources.providers[channel]
    # Leave a second before the job's own timeout for recording the outcome.
    deadline = time.monotonic() + settings.job_timeout_for(channel) - 1

    # Book the send slot before claiming: a job deferred here has spent no attempt.
    limiter = resources.rate_limiter
    slot = await limiter.reserve(channel) if limiter is not None else None

    claimed = await resources.delivery_batches.claim.submit(
        ClaimRequest(notification_id, attempt, lease_seconds(settings, channel), provider.name)
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
        report_exception(exc)
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

    finished_outcome = Finished(
        transitions.Outcome(claimed.id, claimed.attempt, status, detail, **values),
        again=outcome == "retrying",
    )
    finished = await _with_db_retry(
        lambda: resources.delivery_batches.finish.submit(finished_outcome), deadline
    )
    if finished is None:
        # The reconciler took the row back (our lease expired) while the provider was busy.
        log.warning("delivery.lease_lost", outcome=outcome, to=masked)
        return
    if isinstance(error, AddressGone):
        await forget_gone_address(resources, claimed.id, claimed.message.to)
    if outcome == "failed":  # a message with fallback routing tries its next channel
        await after_failed_for_good(resources, [claimed.id])
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
