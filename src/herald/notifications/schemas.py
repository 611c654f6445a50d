"""The notification API's request and response bodies (msgspec structs, shown in OpenAPI).

Request structs check types and refuse unknown fields while decoding; the rules that depend
on the channel (address formats, required fields, limits) live in `validation.py`, which
reports every problem of every item at once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

Channel = Literal["email", "sms", "push", "whatsapp"]
Status = Literal[
    "scheduled", "queued", "sending", "retrying", "sent", "delivered", "failed", "cancelled"
]
PriorityName = Literal["high", "normal", "low"]


class WhatsAppTemplate(msgspec.Struct, forbid_unknown_fields=True):
    """An approved WhatsApp message template and the values of its body parameters."""

    name: Annotated[str, msgspec.Meta(description="Template name.", examples=["order_update"])]
    language: Annotated[str, msgspec.Meta(description="Language code.", examples=["en_US"])]
    parameters: list[str] = []


class NotificationIn(msgspec.Struct, forbid_unknown_fields=True):
    """One notification to send: one message to one address on one channel."""

    channel: Annotated[
        str, msgspec.Meta(description="email, sms, push or whatsapp.", examples=["email"])
    ]
    to: Annotated[
        str,
        msgspec.Meta(
            description="Email address; E.164 number (sms, whatsapp); FCM registration token "
            "(push).",
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
        str, msgspec.Meta(description="high, normal or low; high overtakes waiting work.")
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


class BatchIn(msgspec.Struct, forbid_unknown_fields=True):
    """Up to 1000 notifications, accepted all together or not at all."""

    notifications: list[NotificationIn]


class EventOut(msgspec.Struct):
    """One status transition."""

    status: Status
    at: datetime
    attempt: int
    detail: str | None


class NotificationOut(msgspec.Struct, omit_defaults=True):
    id: uuid.UUID
    channel: Channel
    to: str
    status: Status
    priority: PriorityName
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
    events: list[EventOut] | None = None


class NotificationList(msgspec.Struct):
    items: list[NotificationOut]
    next_cursor: str | None


class BatchOut(msgspec.Struct):
    notifications: list[NotificationOut]


class Problem(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details; `errors` names each bad field."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None
