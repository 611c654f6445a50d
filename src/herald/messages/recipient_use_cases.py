"""The recipient operations every interface calls: upsert, read, erase, push tokens and
preferences.

Each takes a `Principal`: an API key acts on its own recipients only (another key's is "not
found"); an operator (the dashboard) may read and erase any key's recipient, naming the key.
Writes are an API key's. Errors are domain errors (`herald.errors`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from herald.auth.keys import Principal
from herald.errors import Forbidden, NotFound, ValidationFailed, summary
from herald.messages import recipient_store
from herald.messages.recipient_input import (
    PreferencesInput,
    RecipientInput,
    check_preferences,
    check_push_token,
    check_recipient,
    recipient_id_problem,
)
from herald.messages.recipients import Preferences, Recipient, load_recipients
from herald.notifications.unit_of_work import UnitOfWork

log = structlog.get_logger()

_ONLY_API_KEYS = "only an API key can change recipients"


@dataclass(frozen=True, slots=True)
class Upserted:
    recipient: Recipient
    created: bool


class RecipientUseCases:
    """Bound to the process's resources (created once, in the lifespan)."""

    def __init__(self, engine: AsyncEngine, unit_of_work: Callable[[], UnitOfWork]) -> None:
        self._engine = engine
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._unit_of_work = unit_of_work

    async def upsert_recipient(
        self, principal: Principal, recipient_id: str, item: RecipientInput
    ) -> Upserted:
        """Create the recipient or replace its fields (push tokens and preferences kept)."""
        owner = principal.api_key(_ONLY_API_KEYS)
        problems = check_recipient(recipient_id, item)
        if problems:
            raise ValidationFailed(summary(problems), problems=problems)
        async with self._engine.begin() as conn:
            created = await recipient_store.upsert(conn, owner, recipient_id, item)
            recipient = (await load_recipients(conn, owner, [recipient_id]))[recipient_id]
        return Upserted(recipient, created)

    async def get_recipient(
        self, principal: Principal, recipient_id: str, *, api_key_id: uuid.UUID | None = None
    ) -> Recipient:
        """NotFound when the key has no such recipient (an operator names the key)."""
        owner = _owner(principal, api_key_id)
        if recipient_id_problem(recipient_id) is None:
            async with self._autocommit.connect() as conn:
                found = await load_recipients(conn, owner, [recipient_id])
            if recipient_id in found:
                return found[recipient_id]
        raise _not_found(recipient_id)

    async def delete_recipient(
        self, principal: Principal, recipient_id: str, *, api_key_id: uuid.UUID | None = None
    ) -> None:
        """Erase the recipient: its addresses, custom data, tokens and preferences go, and its
        notifications keep only masked addresses (those not yet with a provider are
        cancelled)."""
        owner = _owner(principal, api_key_id)
        if recipient_id_problem(recipient_id) is not None:
            raise _not_found(recipient_id)
        by = f"from the dashboard by {principal.name}" if principal.operator else "by the client"
        async with self._unit_of_work() as uow:
            events = await recipient_store.erase(
                uow.connection, owner, recipient_id, f"cancelled: recipient deleted {by}"
            )
            if events is None:
                raise _not_found(recipient_id)
            uow.publish(events)
        log.info("recipient.deleted", cancelled=len(events))

    async def add_push_token(
        self, principal: Principal, recipient_id: str, token: str
    ) -> Recipient:
        """Add an FCM registration token (adding one it has refreshes it)."""
        owner = principal.api_key(_ONLY_API_KEYS)
        problems = check_push_token(token)
        if problems:
            raise ValidationFailed(summary(problems), problems=problems)
        if recipient_id_problem(recipient_id) is not None:
            raise _not_found(recipient_id)
        async with self._engine.begin() as conn:
            if not await recipient_store.add_push_token(conn, owner, recipient_id, token):
                raise _not_found(recipient_id)
            return (await load_recipients(conn, owner, [recipient_id]))[recipient_id]

    async def remove_push_token(self, principal: Principal, recipient_id: str, token: str) -> None:
        owner = principal.api_key(_ONLY_API_KEYS)
        if recipient_id_problem(recipient_id) is None and "\x00" not in token:
            async with self._engine.begin() as conn:
                if await recipient_store.remove_push_token(conn, owner, recipient_id, token):
                    return
        raise NotFound(f"recipient {recipient_id[:80]!r} has no such push token")

    async def get_preferences(
        self, principal: Principal, recipient_id: str, *, api_key_id: uuid.UUID | None = None
    ) -> Preferences:
        recipient = await self.get_recipient(principal, recipient_id, api_key_id=api_key_id)
        return recipient.preferences

    async def set_preferences(
        self, principal: Principal, recipient_id: str, item: PreferencesInput
    ) -> Preferences:
        """Replace the recipient's preferences as a whole."""
        owner = principal.api_key(_ONLY_API_KEYS)
        preferences, problems = check_preferences(item)
        if preferences is None:
            raise ValidationFailed(summary(problems), problems=problems)
        if recipient_id_problem(recipient_id) is not None:
            raise _not_found(recipient_id)
        async with self._engine.begin() as conn:
            if not await recipient_store.set_preferences(conn, owner, recipient_id, preferences):
                raise _not_found(recipient_id)
        return preferences


def _owner(principal: Principal, api_key_id: uuid.UUID | None) -> uuid.UUID:
    """The key whose recipient is meant: the principal's own, or the one an operator names."""
    if principal.owner is not None:
        return principal.owner
    if api_key_id is None:
        raise Forbidden("an operator names the API key whose recipient is meant")
    return api_key_id


def _not_found(recipient_id: str) -> NotFound:
    return NotFound(f"no recipient {recipient_id[:80]!r}")
