"""The domain's objects for messages: what a client asks to send to whom, and what it became.

msgspec structs, as the notifications' (`herald.notifications.model`): REST encodes them as
they are, GraphQL and gRPC map them field by field. A message is one template sent to one
recipient; it becomes one notification per channel (and per push token) it uses.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec

from herald.notifications.model import Notification
from herald.vocabulary import ROUTINGS, SKIP_REASONS


def _described(description: str, **extra: Any) -> Any:
    return msgspec.Meta(description=description, extra_json_schema=extra or None)


class InlineRecipient(msgspec.Struct, forbid_unknown_fields=True):
    """Addresses given with the message, for someone who is not a stored recipient (no
    preferences, no quiet hours)."""

    email: str | None = None
    phone: Annotated[str | None, _described("E.164 number for SMS.")] = None
    whatsapp: Annotated[str | None, _described("E.164 number for WhatsApp.")] = None
    push_tokens: Annotated[list[str], _described("FCM registration tokens.")] = []
    locale: str | None = None
    timezone: Annotated[str | None, _described("IANA time zone name.")] = None
    data: dict[str, Any] = {}


RecipientRef = Annotated[
    str | InlineRecipient,
    msgspec.Meta(description="A stored recipient's id, or inline addresses."),
]


class MessageInput(msgspec.Struct, forbid_unknown_fields=True):
    """Send a template to one recipient: Herald picks the channels, renders, and records
    one notification per channel used."""

    template: Annotated[str, msgspec.Meta(description="The template's key.", examples=["welcome"])]
    recipient: RecipientRef
    data: Annotated[dict[str, Any], _described("The template's variables.")] = {}
    channels: Annotated[
        list[str] | None,
        _described("Only these channels; with fallback routing, the order to try them in."),
    ] = None
    routing: Annotated[
        str,
        _described(
            "all: every allowed channel at once; fallback: one at a time, the next only when "
            "the previous one failed for good.",
            enum=list(ROUTINGS),
        ),
    ] = "all"
    locale: Annotated[str | None, _described("Overrides the recipient's locale.")] = None
    priority: str = "normal"
    send_at: datetime | None = None
    reference: str | None = None
    metadata: dict[str, Any] | None = None


class BatchRecipient(msgspec.Struct, forbid_unknown_fields=True):
    """One recipient of a batch, with variables of its own (merged over the batch's)."""

    recipient: RecipientRef
    data: dict[str, Any] = {}


class MessageBatchInput(msgspec.Struct, forbid_unknown_fields=True):
    """One template to up to 1000 recipients: all accepted, or none (422 naming each bad
    recipient)."""

    template: str
    recipients: list[str | BatchRecipient]
    data: dict[str, Any] = {}
    channels: list[str] | None = None
    routing: str = "all"
    locale: str | None = None
    priority: str = "normal"
    send_at: datetime | None = None
    reference: str | None = None
    metadata: dict[str, Any] | None = None

    def messages(self) -> list[MessageInput]:
        """One message per recipient, the batch's fields copied into each."""
        out: list[MessageInput] = []
        for entry in self.recipients:
            ref, own = (entry, {}) if isinstance(entry, str) else (entry.recipient, entry.data)
            out.append(
                MessageInput(
                    template=self.template,
                    recipient=ref,
                    data={**self.data, **own},
                    channels=self.channels,
                    routing=self.routing,
                    locale=self.locale,
                    priority=self.priority,
                    send_at=self.send_at,
                    reference=self.reference,
                    metadata=self.metadata,
                )
            )
        return out


class Skipped(msgspec.Struct):
    channel: str
    reason: Annotated[str, _described("Why it was not used.", enum=list(SKIP_REASONS))]


class Deferred(msgspec.Struct):
    """The message waits for the end of the recipient's quiet hours."""

    reason: Annotated[str, _described("quiet_hours", enum=["quiet_hours"])]
    until: datetime


class Message(msgspec.Struct, omit_defaults=True):
    """A message: its notifications (one per channel used, one per push token), the channels
    it skipped and why, and, with fallback routing, the channels still to try."""

    id: uuid.UUID
    template: str
    template_version: int
    routing: str
    channels: Annotated[list[str], _described("The channels used, in order.")]
    notifications: list[Notification]
    skipped: list[Skipped]
    priority: str
    created_at: datetime
    recipient: Annotated[str | None, _described("The stored recipient's id.")] = None
    locale: Annotated[str | None, _described("The template locale used.")] = None
    pending: Annotated[
        list[str], _described("Fallback: the channels tried next if the current one fails.")
    ] = []
    deferred: Deferred | None = None
    send_at: datetime | None = None
    reference: str | None = None
    metadata: dict[str, Any] | None = None


class MessageBatch(msgspec.Struct):
    messages: list[Message]
