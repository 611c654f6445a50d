"""`Message` and its inputs: a template sent to a recipient, and what it became.

The inputs convert to the domain's `MessageInput` by msgspec (the decoder REST uses), after
the nesting limit is checked on the JSON fields; the rules are the use case's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
import strawberry

from herald.api.graphql.types.enums import Channel, Priority, Routing, SkipReason
from herald.api.graphql.types.notification import Notification
from herald.api.graphql.types.scalars import JSON
from herald.errors import FieldProblem, InvalidInput
from herald.messages import model
from herald.notifications import nesting


@strawberry.input(description="Addresses given with the message instead of a recipient id.")
class InlineRecipientInput:
    email: str | None = None
    phone: str | None = None
    whatsapp: str | None = None
    push_tokens: list[str] = strawberry.field(default_factory=list)
    locale: str | None = None
    timezone: str | None = None
    data: JSON | None = None


@strawberry.input(description="One recipient of a batch, with variables of its own.")
class BatchRecipientInput:
    recipient: str | None = strawberry.field(default=None, description="A stored recipient id.")
    inline: InlineRecipientInput | None = None
    data: JSON | None = None


@strawberry.input(description="A template to send: to `recipient` (an id) or `inline` addresses.")
class MessageInput:
    template: str
    recipient: str | None = strawberry.field(default=None, description="A stored recipient id.")
    inline: InlineRecipientInput | None = None
    data: JSON | None = strawberry.field(default=None, description="The template's variables.")
    channels: list[Channel] | None = strawberry.field(
        default=None, description="Only these; with FALLBACK routing, the order to try them in."
    )
    routing: Routing | None = None
    locale: str | None = None
    priority: Priority | None = None
    send_at: datetime | None = None
    reference: str | None = None
    metadata: JSON | None = None

    def shared(self, field: str) -> dict[str, Any]:
        for name, value in (("data", self.data), ("metadata", self.metadata)):
            _check_depth(value, f"{field}.{name}")
        raw: dict[str, Any] = {
            "template": self.template,
            "data": self.data or {},
            "channels": [c.value for c in self.channels] if self.channels is not None else None,
            "locale": self.locale,
            "send_at": self.send_at,
            "reference": self.reference,
            "metadata": self.metadata,
        }
        if self.routing is not None:
            raw["routing"] = self.routing.value
        if self.priority is not None:
            raw["priority"] = self.priority.value
        return raw

    def to_domain(self, field: str) -> model.MessageInput:
        raw = {**self.shared(field), "recipient": _recipient(self, field)}
        converted: model.MessageInput = _convert(raw, model.MessageInput, field)
        return converted


def _check_depth(value: Any, path: str) -> None:
    if nesting.depth_exceeds(value):
        message = f"is nested more than {nesting.MAX_DEPTH} levels deep"
        raise InvalidInput(f"{path} {message}", problems=[FieldProblem(path, message)])


def _recipient(value: MessageInput | BatchRecipientInput, field: str) -> Any:
    if (value.recipient is None) == (value.inline is None):
        message = "give exactly one of recipient (an id) and inline (addresses)"
        raise InvalidInput(message, problems=[FieldProblem(f"{field}.recipient", message)])
    if value.inline is None:
        return value.recipient
    inline = value.inline
    _check_depth(inline.data, f"{field}.inline.data")
    return {
        "email": inline.email,
        "phone": inline.phone,
        "whatsapp": inline.whatsapp,
        "push_tokens": inline.push_tokens,
        "locale": inline.locale,
        "timezone": inline.timezone,
        "data": inline.data or {},
    }


def batch_to_domain(
    shared: MessageInput, recipients: list[BatchRecipientInput], field: str
) -> model.MessageBatchInput:
    """A batch: `shared`'s fields (its recipient unused) for each of `recipients`."""
    entries = []
    for index, entry in enumerate(recipients):
        path = f"recipients[{index}]"
        _check_depth(entry.data, f"{path}.data")
        entries.append({"recipient": _recipient(entry, path), "data": entry.data or {}})
    raw = {**shared.shared(field), "recipients": entries}
    converted: model.MessageBatchInput = _convert(raw, model.MessageBatchInput, field)
    return converted


def _convert(raw: dict[str, Any], kind: Any, field: str) -> Any:
    try:
        return msgspec.convert(raw, kind, from_attributes=False)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `$.")
        path = f"{field}.{where.rstrip('`')}" if where else field
        raise InvalidInput(f"{path} {message}", problems=[FieldProblem(path, message)]) from None


@strawberry.type(description="A channel a message did not use, and why.")
class SkippedChannel:
    channel: Channel
    reason: SkipReason


@strawberry.type(description="A template sent to a recipient: its notifications, and skips.")
class Message:
    id: strawberry.ID
    template: str
    template_version: int
    routing: Routing
    channels: list[Channel] = strawberry.field(description="The channels used, in order.")
    notifications: list[Notification]
    skipped: list[SkippedChannel]
    priority: Priority
    created_at: datetime
    recipient: str | None
    locale: str | None
    pending: list[Channel] = strawberry.field(
        description="FALLBACK: the channels tried next if the current one fails for good."
    )
    deferred_until: datetime | None = strawberry.field(
        description="When the recipient's quiet hours deferred it: when they end."
    )
    send_at: datetime | None
    reference: str | None
    metadata: JSON | None

    @classmethod
    def from_domain(cls, m: model.Message) -> Message:
        return cls(
            id=strawberry.ID(str(m.id)),
            template=m.template,
            template_version=m.template_version,
            routing=Routing(m.routing),
            channels=[Channel(c) for c in m.channels],
            notifications=[Notification.from_domain(n) for n in m.notifications],
            skipped=[
                SkippedChannel(channel=Channel(s.channel), reason=SkipReason(s.reason))
                for s in m.skipped
            ],
            priority=Priority(m.priority),
            created_at=m.created_at,
            recipient=m.recipient,
            locale=m.locale,
            pending=[Channel(c) for c in m.pending],
            deferred_until=m.deferred.until if m.deferred else None,
            send_at=m.send_at,
            reference=m.reference,
            metadata=JSON(m.metadata) if m.metadata is not None else None,
        )
