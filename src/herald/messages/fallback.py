"""Fallback routing: when a message's notifications failed for good, accept the next channel's.

`after_failed_for_good` is the one hook delivery calls (`herald.notifications.delivery`), with
the notifications it has just recorded as `failed`. For each fallback message among them
whose notifications have all failed (a push to two devices falls back only when both did),
it takes the next channel off the message's `pending` list (content rendered at acceptance)
and accepts its notifications through `transitions.accept`, in one transaction with the
message row locked, so two failures at once fall back once. Notifications not made by a
message cost one indexed query and nothing else.

The hook never fails a delivery: an error is logged (`message.fallback_failed`) and
reported; that message then stops at the failed channel.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import msgspec
import structlog

from herald.messages import store as messages_store
from herald.notifications import transitions
from herald.notifications.model import NotificationInput
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
            for message in await messages_store.lock_to_fall_back(uow.connection, notification_ids):
                following = message.pending[0]
                items = msgspec.convert(following["notifications"], _ITEMS)
                origin = transitions.Origin(message.id, message.recipient_id)
                rows, events = await transitions.accept(
                    uow.connection,
                    message.api_key_id,
                    items,
                    resources.settings.max_attempts,
                    [origin] * len(items),
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
    except Exception as exc:
        log.exception("message.fallback_failed", count=len(notification_ids))
        report_exception(exc)
