"""Sending messages (a template to a recipient) and reading them: the operations every
interface calls, over the notifications' acceptance path.

A message is decided at acceptance (`planning`): the template's current version, the
recipient's addresses and choices, the route, the rendered content, quiet hours. Then one
unit of work stores the message rows and accepts their notifications through
`transitions.accept` (the one writer of notifications), commits, and only then enqueues and
publishes, as every notification does. An idempotency key works as for notifications: the
result it keeps is the message ids, so a repeat over any interface returns the same messages.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from herald.auth.keys import Principal
from herald.errors import FieldProblem, InvalidInput, NotFound, ValidationFailed, summary
from herald.messages import planning
from herald.messages import store as messages_store
from herald.messages.model import InlineRecipient, Message, MessageBatchInput, MessageInput
from herald.messages.planning import Plan, Target
from herald.messages.recipients import Recipient, load_recipients
from herald.messages.routing import Choices
from herald.messages.templates import TemplateVersion, load_current
from herald.notifications import idempotency, transitions
from herald.notifications import store as notifications_store
from herald.notifications.events import StatusEvent

# The first event of a just-accepted notification, as the core's own 202 shows it.
from herald.notifications.use_cases import ONLY_API_KEYS, NotificationUseCases, _first_event
from herald.notifications.validation import MAX_BATCH

SEND_MESSAGE = "send_message"
SEND_MESSAGES = "send_messages"
MAX_LIST = 200

_canonical = msgspec.json.Encoder(order="sorted").encode


@dataclass(frozen=True, slots=True)
class SentMessages:
    """The messages a request created, or for a repeated idempotency key the ones the first
    request created (`replayed`, their notifications in their current state)."""

    messages: list[Message]
    replayed: bool = False


def stored_target(recipient: Recipient) -> Target:
    preferences = recipient.preferences
    quiet = preferences.quiet_hours
    return Target(
        id=recipient.id,
        addresses=planning.addresses(
            recipient.email, recipient.phone, recipient.whatsapp, recipient.push_tokens
        ),
        locale=recipient.locale,
        timezone=recipient.timezone,
        data=recipient.data,
        choices=Choices(preferences.channels, preferences.categories),
        quiet_hours=(quiet.start, quiet.end) if quiet is not None else None,
    )


class MessageUseCases:
    """Bound to the notifications' use cases (their settings, unit of work, queue, feed)."""

    def __init__(self, core: NotificationUseCases, engine: AsyncEngine) -> None:
        self._core = core
        self._engine = engine
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        # What "now" is when quiet hours are checked (tests move it).
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    async def send_message(
        self, principal: Principal, item: MessageInput, *, idempotency_key: str | None = None
    ) -> SentMessages:
        """Decide, render and accept one message; 422 naming every problem."""
        return await self._send(principal, [item], SEND_MESSAGE, idempotency_key, batch=False)

    async def send_messages(
        self,
        principal: Principal,
        batch: MessageBatchInput,
        *,
        idempotency_key: str | None = None,
    ) -> SentMessages:
        """One template to up to 1000 recipients, all or nothing (`recipients[i]...` names
        each bad one)."""
        if not batch.recipients or len(batch.recipients) > MAX_BATCH:
            message = f"must hold 1 to {MAX_BATCH} recipients, not {len(batch.recipients)}"
            raise ValidationFailed(
                f"recipients {message}", problems=[FieldProblem("recipients", message)]
            )
        return await self._send(
            principal, batch.messages(), SEND_MESSAGES, idempotency_key, batch=True
        )

    async def get_message(self, principal: Principal, message_id: uuid.UUID) -> Message:
        """One message with its notifications; NotFound if it is not the principal's."""
        async with self._autocommit.connect() as connection:
            found = await messages_store.read_messages(connection, principal.owner, [message_id])
        if not found:
            raise NotFound(f"no message {message_id}")
        return found[0]

    async def list_messages(
        self, principal: Principal, *, limit: int = 50, before: datetime | None = None
    ) -> list[Message]:
        """The newest messages (an API key's own; an operator sees everyone's)."""
        if not 1 <= limit <= MAX_LIST:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIST}")
        async with self._autocommit.connect() as connection:
            return await messages_store.list_recent(connection, principal.owner, limit, before)

    # -- accepting ---------------------------------------------------------------------------

    async def _send(
        self,
        principal: Principal,
        items: list[MessageInput],
        operation: str,
        idempotency_key: str | None,
        *,
        batch: bool,
    ) -> SentMessages:
        owner = principal.api_key(ONLY_API_KEYS)
        problems = [
            _prefixed(p, index if batch else None)
            for index, item in enumerate(items)
            for p in planning.check_input(item)
        ]
        if problems:
            problems = _first_per_field(problems)
            raise ValidationFailed(summary(problems), problems=problems)
        key: idempotency.Key | None = None
        settings = self._core.settings
        if idempotency_key is not None:
            key = idempotency.Key(owner, operation, idempotency.check_key(idempotency_key))
            request_hash = idempotency.fingerprint(operation, _canonical(items))
            ids = await idempotency.claim(
                self._engine, key, request_hash, settings.idempotency_ttl_seconds
            )
            if ids is not None:
                async with self._autocommit.connect() as connection:
                    found = await messages_store.read_messages(connection, owner, ids)
                return SentMessages(found, replayed=True)
        rows: list[Any] = []
        events: list[StatusEvent] = []
        try:
            plans = await self._plan(owner, items, batch=batch)
            async with self._core.unit_of_work() as uow:
                await messages_store.insert_messages(uow.connection, [p.row for p in plans])
                notifications = [n for p in plans for n in p.items]
                if notifications:
                    origins = [
                        transitions.Origin(p.message_id, p.row["recipient_id"])
                        for p in plans
                        for _ in p.items
                    ]
                    rows, events = await transitions.accept(
                        uow.connection, owner, notifications, settings.max_attempts, origins
                    )
                    uow.deliver(rows)
                    uow.publish(events)
                if key is not None:
                    await idempotency.record_result(
                        uow.connection, key, [p.message_id for p in plans]
                    )
        except BaseException:
            if key is not None:
                await idempotency.release(self._engine, key)
            raise
        # As accepted (a worker may have claimed them since): rows in the order given.
        accepted = iter(
            notifications_store.to_domain(row, events=[_first_event(event)])
            for row, event in zip(rows, events, strict=True)
        )
        return SentMessages(
            [messages_store.from_plan(p.row, [next(accepted) for _ in p.items]) for p in plans]
        )

    async def _plan(
        self, owner: uuid.UUID, items: list[MessageInput], *, batch: bool
    ) -> list[Plan]:
        async with self._autocommit.connect() as connection:
            template_keys = list(dict.fromkeys(item.template for item in items))
            templates = {k: await load_current(connection, owner, k) for k in template_keys}
            wanted = [item.recipient for item in items if isinstance(item.recipient, str)]
            recipients = await load_recipients(connection, owner, list(dict.fromkeys(wanted)))
        # Rendering is CPU work a large template makes long: off the event loop, in a thread
        # (as the templates' preview), the whole request in one hop.
        return await asyncio.to_thread(
            _plan_all, owner, items, templates, recipients, self.clock(), batch=batch
        )


def _plan_all(
    owner: uuid.UUID,
    items: list[MessageInput],
    templates: Mapping[str, TemplateVersion | None],
    recipients: Mapping[str, Recipient],
    now: datetime,
    *,
    batch: bool,
) -> list[Plan]:
    """Every message planned, or ValidationFailed naming each problem of each."""
    plans: list[Plan] = []
    problems: list[FieldProblem] = []
    for index, item in enumerate(items):
        at = index if batch else None
        template = templates[item.template]
        if template is None:
            problems.append(
                _prefixed(FieldProblem("template", f"no template {item.template!r}"), at)
            )
            continue
        target = _target(item.recipient, recipients)
        if target is None:
            problems.append(
                _prefixed(FieldProblem("recipient", f"no recipient {item.recipient!r}"), at)
            )
            continue
        try:
            plans.append(planning.plan(owner, item, template, target, now))
        except ValidationFailed as exc:
            problems += [_prefixed(p, at) for p in exc.problems]
    if problems:
        problems = _first_per_field(problems)
        raise ValidationFailed(summary(problems), problems=problems)
    return plans


def _target(ref: str | InlineRecipient, stored: Mapping[str, Recipient]) -> Target | None:
    if isinstance(ref, InlineRecipient):
        return planning.inline_target(ref)
    found = stored.get(ref)
    return stored_target(found) if found is not None else None


# What every message of a batch shares: its problems are the batch's, named once.
_SHARED = {"template", "channels", "routing", "locale", "priority", "send_at", "reference"}
_SHARED |= {"metadata"}


def _prefixed(problem: FieldProblem, index: int | None) -> FieldProblem:
    """A problem of the `index`-th message of a batch, named as the client wrote it."""
    root = problem.field.split(".")[0].split("[")[0]
    if index is None or root in _SHARED:
        return problem
    return FieldProblem(f"recipients[{index}].{problem.field}", problem.message, index)


def _first_per_field(problems: Sequence[FieldProblem]) -> list[FieldProblem]:
    seen: dict[str, FieldProblem] = {}
    for problem in problems:
        seen.setdefault(problem.field, problem)
    return list(seen.values())
