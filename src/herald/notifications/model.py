"""The domain's objects: what a client asks to send, and what a notification is.

Use cases take `NotificationInput` and return `Notification`, `Event` and `NotificationPage`.
They are msgspec structs, so REST encodes them as they are (its JSON is their encoding, and
OpenAPI is generated from them); GraphQL and gRPC map them field by field. Types and unknown
fields are checked while decoding; the rules that depend on the channel (address formats,
required fields, limits) live in `validation.py`, which reports every problem at once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec

from herald.notifications import addresses
from herald.vocabulary import CHANNELS, PRIORITIES, Channel, Priority, Status


def _schema(description: str, extra: dict[str, Any], examples: list[str] | None = None) -> Any:
    """Field metadata whose `extra` reaches the OpenAPI schema only (not the decoder)."""
    text: dict[str, Any] = {"description": description, "extra": extra}
    if examples:
        text["examples"] = examples
    return msgspec.Meta(description=description, extra_json_schema=text)


class WhatsAppTemplate(msgspec.Struct, forbid_unknown_fields=True):
    """An approved WhatsApp message template and the values of its body parameters."""

    name: Annotated[str, msgspec.Meta(description="Template name.", examples=["order_update"])]
    language: Annotated[str, msgspec.Meta(description="Language code.", examples=["en_US"])]
    parameters: list[str] = []


class NotificationInput(msgspec.Struct, forbid_unknown_fields=True):
    """One notification to send: one message to one address on one channel."""

    # `channel`, `to` and `priority` are rules, not types (a wrong value is a 422 naming the
    # field, not a decoding error): the schema states them as text for clients and tools.
    channel: Annotated[
        str,
        _schema("email, sms, push or whatsapp.", {"enum": list(CHANNELS)}, examples=["email"]),
    ]
    to: Annotated[
        str,
        _schema(
            "Email address (email); E.164 number (sms, whatsapp); FCM registration token (push).",
            {"pattern": addresses.ANY},
            examples=["jane@example.com"],
        ),
    ]
    subject: Annotated[
        str | None, msgspec.Meta(description="Email subject (required for email).")
    ] = None
    body: Annotated[str | None, msgspec.Meta(description="Text body.")] = None
    html: Annotated[str | None, msgspec.Meta(description="Email HTML part (optional).")] = None
    data: Annotated[
        dict[str, str] | None, msgspec.Meta(description="Push data payload (string values).")
    ] = None
    template: Annotated[
        WhatsAppTemplate | None,
        msgspec.Meta(description="WhatsApp template: the alternative to `body`."),
    ] = None
    priority: Annotated[
        str,
        _schema("high, normal or low; high overtakes waiting work.", {"enum": list(PRIORITIES)}),
    ] = "normal"
    send_at: Annotated[
        datetime | None,
        msgspec.Meta(description="RFC 3339 time with offset; in the future it schedules."),
    ] = None
    reference: Annotated[
        str | None, msgspec.Meta(description="Your own id for this notification (≤ 255).")
    ] = None
    metadata: Annotated[
        dict[str, Any] | None,
        msgspec.Meta(
            description="A JSON object kept with it: at most 4 KiB, nested at most 32 levels "
            "(deeper is a 400 naming the field)."
        ),
    ] = None


class Event(msgspec.Struct):
    """One status transition, with its reason."""

    status: Status
    at: datetime
    attempt: int
    detail: str | None
    sequence: Annotated[
        int | None,
        msgspec.Meta(description="1, 2, 3... per notification: a gap means a missed event."),
    ] = None


class Notification(msgspec.Struct, omit_defaults=True):
    """A stored notification: one message to one address on one channel, and its history."""

    id: uuid.UUID
    channel: Channel
    to: str
    status: Status
    priority: Priority
    attempts: int
    max_attempts: int
    created_at: datetime
    updated_at: datetime
    subject: str | None = None
    body: str | None = None
    html: str | None = None
    data: dict[str, str] | None = None
    template: dict[str, Any] | None = None
    send_at: datetime | None = None
    reference: str | None = None
    metadata: dict[str, Any] | None = None
    next_attempt_at: datetime | None = None
    provider: str | None = None
    provider_message_id: str | None = None
    error: str | None = None
    sent_at: datetime | None = None
    events: list[Event] | None = None


class NotificationPage(msgspec.Struct):
    """A page of notifications, newest first; `next_cursor` reads the next one."""

    items: list[Notification]
    next_cursor: str | None
