"""Writing recipients: upsert, push tokens, preferences, and erasure. Reads are `recipients`'.

Every function takes the connection of the caller's unit of work and names the API key, so
one key never touches another's recipients. Erasure is the one function here that reaches
into notifications: it masks the addresses the recipient's history holds (status changes go
through `transitions`, as everywhere).
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from sqlalchemy import Table, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from herald.db.models import Recipient as RecipientRow
from herald.db.models import RecipientPushToken as TokenRow
from herald.logging import mask_address
from herald.messages.recipient_input import MAX_PUSH_TOKENS, RecipientInput
from herald.messages.recipients import Preferences
from herald.notifications import transitions
from herald.notifications.events import StatusEvent
from herald.vocabulary import CANCELLABLE

_RECIPIENTS = cast(Table, RecipientRow.__table__)
_TOKENS = cast(Table, TokenRow.__table__)


async def upsert(
    conn: AsyncConnection, api_key_id: uuid.UUID, recipient_id: str, item: RecipientInput
) -> bool:
    """Create or replace the recipient's fields (tokens and preferences kept); True if new."""
    fields: dict[str, Any] = {
        "email": item.email,
        "phone": item.phone,
        "whatsapp": item.whatsapp,
        "locale": item.locale.replace("_", "-") if item.locale else None,
        "timezone": item.timezone,
        "data": item.data or {},
    }
    statement = (
        insert(_RECIPIENTS)
        .values(
            api_key_id=api_key_id,
            id=recipient_id,
            created_at=func.now(),
            updated_at=func.now(),
            **fields,
        )
        .on_conflict_do_update(
            index_elements=["api_key_id", "id"], set_={**fields, "updated_at": func.now()}
        )
        .returning(text("(xmax = 0) AS created"))
    )
    return bool((await conn.execute(statement)).scalar_one())


async def set_preferences(
    conn: AsyncConnection, api_key_id: uuid.UUID, recipient_id: str, preferences: Preferences
) -> bool:
    """Replace the preferences; False when there is no such recipient."""
    statement = (
        update(_RECIPIENTS)
        .where(_RECIPIENTS.c.api_key_id == api_key_id, _RECIPIENTS.c.id == recipient_id)
        .values(preferences=preferences.to_json(), updated_at=func.now())
        .returning(_RECIPIENTS.c.id)
    )
    return (await conn.execute(statement)).first() is not None


async def add_push_token(
    conn: AsyncConnection, api_key_id: uuid.UUID, recipient_id: str, token: str
) -> bool:
    """Give the token to the recipient (taking it from another recipient of the key: the
    device changed hands), keeping the newest MAX_PUSH_TOKENS; False when there is no such
    recipient."""
    found = await conn.execute(
        select(_RECIPIENTS.c.id)
        .where(_RECIPIENTS.c.api_key_id == api_key_id, _RECIPIENTS.c.id == recipient_id)
        .with_for_update()
    )
    if found.first() is None:
        return False
    await conn.execute(
        insert(_TOKENS)
        .values(
            api_key_id=api_key_id, token=token, recipient_id=recipient_id, created_at=func.now()
        )
        .on_conflict_do_update(
            index_elements=["api_key_id", "token"],
            set_={"recipient_id": recipient_id, "created_at": func.now()},
        )
    )
    mine = (_TOKENS.c.api_key_id == api_key_id) & (_TOKENS.c.recipient_id == recipient_id)
    newest = (
        select(_TOKENS.c.token)
        .where(mine)
        .order_by(_TOKENS.c.created_at.desc(), _TOKENS.c.token)
        .limit(MAX_PUSH_TOKENS)
    )
    await conn.execute(delete(_TOKENS).where(mine, _TOKENS.c.token.not_in(newest)))
    await conn.execute(
        update(_RECIPIENTS)
        .where(_RECIPIENTS.c.api_key_id == api_key_id, _RECIPIENTS.c.id == recipient_id)
        .values(updated_at=func.now())
    )
    return True


async def remove_push_token(
    conn: AsyncConnection, api_key_id: uuid.UUID, recipient_id: str, token: str
) -> bool:
    """False when the recipient has no such token (or there is no such recipient)."""
    statement = (
        delete(_TOKENS)
        .where(
            _TOKENS.c.api_key_id == api_key_id,
            _TOKENS.c.recipient_id == recipient_id,
            _TOKENS.c.token == token,
        )
        .returning(_TOKENS.c.token)
    )
    return (await conn.execute(statement)).first() is not None


_FORGET_TOKEN = text(
    """
    DELETE FROM recipient_push_tokens t
     USING notifications n
     WHERE n.id = :notification_id AND t.api_key_id = n.api_key_id AND t.token = :token
    RETURNING t.recipient_id
    """
)


async def forget_push_token(
    conn: AsyncConnection, notification_id: uuid.UUID, token: str
) -> str | None:
    """Remove a token the provider no longer knows from the recipients of the notification's
    API key; the recipient id it belonged to, if any."""
    params = {"notification_id": notification_id, "token": token}
    return (await conn.execute(_FORGET_TOKEN, params)).scalar_one_or_none()


_PENDING_OF = text(
    """
    SELECT id FROM notifications
     WHERE api_key_id = :api_key_id AND recipient_id = :recipient_id
       AND status = ANY(:statuses)
    """
)
_HISTORY_OF = text(
    """
    SELECT id, recipient, subject, body, html, error FROM notifications
     WHERE api_key_id = :api_key_id AND recipient_id = :recipient_id
     FOR UPDATE
    """
)
_EVENTS_OF = text(
    """
    SELECT e.id, e.detail FROM notification_events e JOIN notifications n
        ON n.id = e.notification_id
     WHERE n.api_key_id = :api_key_id AND n.recipient_id = :recipient_id
       AND e.detail IS NOT NULL
    """
)
_MASK_EVENT = text("UPDATE notification_events SET detail = :detail WHERE id = :id")
_CONTENT = ("subject", "body", "html", "error")


class _Masker:
    """Replaces each of a recipient's addresses in a text by its mask, longest first."""

    def __init__(self, addresses: set[str]) -> None:
        self.pairs = [(a, mask_address(a)) for a in sorted(addresses, key=len, reverse=True)]

    def __call__(self, value: str | None) -> str | None:
        if value is None:
            return None
        for address, masked in self.pairs:
            value = value.replace(address, masked)
        return value


async def erase(
    conn: AsyncConnection, api_key_id: uuid.UUID, recipient_id: str, detail: str
) -> list[StatusEvent] | None:
    """Delete the recipient (addresses, custom data, tokens, preferences) and mask its
    addresses wherever its notifications hold them; those not yet with a provider are
    cancelled first. The cancellations' events (to publish after the commit), or None when
    there is no such recipient."""
    keys = {"api_key_id": api_key_id, "recipient_id": recipient_id}
    tokens = (
        await conn.execute(
            delete(_TOKENS)
            .where(_TOKENS.c.api_key_id == api_key_id, _TOKENS.c.recipient_id == recipient_id)
            .returning(_TOKENS.c.token)
        )
    ).scalars()
    addresses = set(tokens)
    row = (
        await conn.execute(
            delete(_RECIPIENTS)
            .where(_RECIPIENTS.c.api_key_id == api_key_id, _RECIPIENTS.c.id == recipient_id)
            .returning(_RECIPIENTS.c.email, _RECIPIENTS.c.phone, _RECIPIENTS.c.whatsapp)
        )
    ).first()
    if row is None:
        return None
    addresses.update(a for a in row if a)

    events: list[StatusEvent] = []
    pending = (await conn.execute(_PENDING_OF, {**keys, "statuses": list(CANCELLABLE)})).scalars()
    for notification_id in list(pending):
        moved = await transitions.cancel(conn, notification_id, api_key_id, detail)
        if moved is not None:
            events.append(moved.event)

    history = (await conn.execute(_HISTORY_OF, keys)).all()
    addresses.update(h.recipient for h in history)
    mask = _Masker(addresses)
    masked = [
        {"id": h.id, "recipient": mask_address(h.recipient)}
        | {name: mask(getattr(h, name)) for name in _CONTENT}
        for h in history
    ]
    if masked:
        await transitions.rewrite_addresses(conn, masked)
    details = [
        {"id": e.id, "detail": new}
        for e in (await conn.execute(_EVENTS_OF, keys))
        if (new := mask(e.detail)) != e.detail
    ]
    if details:
        await conn.execute(_MASK_EVENT, details)
    return events
