"""Fallback routing: when a message's notifications failed for good, accept the next channel's.

`after_failed_for_good` is the one hook delivery calls (`herald.notifications.delivery`), with
the notifications it has just recorded as `failed`. For each fallback message among them
whose notifications have all failed (a push to two devices falls back only when both did),
it takes the next channel off the message's `pending` list (content rendered at acceptance)
and accepts its notifications through `transitions.accept`, in one transaction with the
message row locked, so two failures at once fall back once. Notifications not made by a
message cost one indexed query and nothing else.

The hook never fails a delivery: an error is logged (`message.fallback_failed`) and
reported. It is only the fast path; the guarantee is `sweep`, run in every reconciler pass
(one replica at a time): it finds fallback messages whose notifications all failed and whose
next channel was not accepted (the hook's write failed, or the reconciler itself failed the
last attempt of an abandoned delivery) and falls back through the same `_fall_back`. Both
lock the message row and re-check "all failed" after the lock, so the hook and the sweep
racing (or two sweeps) accept the next channel once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
import structlog

from herald.messages import store as messages_store
from herald.notifications import transitions
from herald.notifications.model import NotificationInput
from herald.notifications.unit_of_work import UnitOfWork
from herald.reporting import report_exception
from herald.resources import Resources

log = structlog.get_logger()

_ITEMS = list[NotificationInput]


async def after_failed_for_good(
    resources: Resources, notification_ids: Sequence[uuid.UUID]
) -> None:
    """Fall back to the next channel of the fallback messages these failures end."""
    try:
        async with resources.worker_unit_of_work(transactional=True) as uow:
            found = await messages_store.lock_to_fall_back(uow.connection, notification_ids)
            await _fall_back(uow, resources.settings.max_attempts, found)
    except Exception as exc:
        # Not lost: the reconciler's `sweep` finds this message and falls back then.
        log.exception("message.fallback_failed", count=len(notification_ids))
        report_exception(exc)


async def sweep(uow: UnitOfWork, max_attempts: int, batch: int) -> int:
    """Fall back, in this unit of work, for up to `batch` fallback messages whose
    notifications all failed but whose next channel was not accepted; how many did. Each in
    a savepoint: a message that cannot fall back is logged (`message.fallback_sweep_failed`)
    and tried again next pass, and never fails the reconciler's pass around it."""
    fell_back = 0
    for message in await messages_store.lock_left_behind(uow.connection, batch):
        try:
            async with uow.connection.begin_nested():
                await _fall_back(uow, max_attempts, [message])
        except Exception as exc:
            log.exception("message.fallback_sweep_failed", message_id=str(message.id))
            report_exception(exc)
            continue
        fell_back += 1
        log.warning("message.fallback_swept", message_id=str(message.id))
    return fell_back


async def _fall_back(uow: UnitOfWork, max_attempts: int, messages: Sequence[Any]) -> None:
    """Accept the next channel of these locked messages, and take it off their `pending`."""
    for message in messages:
        following = message.pending[0]
        items = msgspec.convert(following["notifications"], _ITEMS)
        origin = transitions.Origin(message.id, message.recipient_id)
        rows, events = await transitions.accept(
            uow.connection, message.api_key_id, items, max_attempts, [origin] * len(items)
        )
        await messages_store.take_pending(uow.connection, message.id)
        uow.deliver(rows)
        uow.publish(events)
        log.info(
            "message.fell_back",
            message_id=str(message.id),
            channel=following["channel"],
            notifications=len(rows),
        )
