"""What the delivery path tells the recipients layer: one call per fact, easy to move.

`forget_gone_address` is called once a delivery failed because the provider says the address
no longer exists (`herald.channels.AddressGone`, FCM's `UNREGISTERED`): the token is removed
from the recipients of the notification's API key, so the next message does not try it.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import structlog

from herald.errors import is_outage
from herald.messages import recipient_store

if TYPE_CHECKING:
    from herald.resources import Resources

log = structlog.get_logger()


async def forget_gone_address(
    resources: Resources, notification_id: uuid.UUID, address: str
) -> None:
    """Remove the push token from the key's recipients; never fails the delivery (the outcome
    is recorded already, and a token left behind only fails once more)."""
    try:
        async with resources.worker_autocommit_engine.connect() as conn:
            recipient_id = await recipient_store.forget_push_token(conn, notification_id, address)
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning("recipient.push_token_not_removed", error=type(exc).__name__)
        return
    if recipient_id is not None:
        log.info("recipient.push_token_removed", notification_id=str(notification_id))
