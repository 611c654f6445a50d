"""Messages of `herald.v1` to the domain's types and back, field by field.

The vocabulary's enums map to the contract's by name (`Channel.EMAIL` is `CHANNEL_EMAIL`),
here and nowhere else. `metadata` (a `google.protobuf.Struct`) is converted without
recursion, refusing more than `MAX_DEPTH` levels before anything recursive sees it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from herald.api.grpc.v1 import notifications_pb2 as pb
from herald.errors import FieldProblem, InvalidInput
from herald.notifications.events import StatusEvent
from herald.notifications.model import (
    Event,
    Notification,
    NotificationInput,
    WhatsAppTemplate,
)
from herald.notifications.nesting import MAX_DEPTH
from herald.notifications.validation import MAX_PAGE
from herald.vocabulary import Channel, Priority, Status

DEFAULT_PAGE = 50


def _mapping(enum: type[StrEnum], prefix: str, proto: Any) -> dict[StrEnum, int]:
    return {member: proto.Value(f"{prefix}_{member.name}") for member in enum}


CHANNEL_TO_PROTO: dict[StrEnum, int] = _mapping(Channel, "CHANNEL", pb.Channel)
STATUS_TO_PROTO: dict[StrEnum, int] = _mapping(Status, "STATUS", pb.Status)
PRIORITY_TO_PROTO: dict[StrEnum, int] = _mapping(Priority, "PRIORITY", pb.Priority)
CHANNEL_FROM_PROTO = {number: member.value for member, number in CHANNEL_TO_PROTO.items()}
STATUS_FROM_PROTO = {number: member.value for member, number in STATUS_TO_PROTO.items()}
PRIORITY_FROM_PROTO = {number: member.value for member, number in PRIORITY_TO_PROTO.items()}


def _enum_value(numbers: dict[int, str], number: int, *, unspecified: str | None) -> str | None:
    """The vocabulary's word for `number`; `unspecified` for 0; an unknown number stays a
    word no rule accepts, so the use case names the field."""
    if number == 0:
        return unspecified
    return numbers.get(number, f"<unknown enum value {number}>")


# -- timestamps --------------------------------------------------------------------------------


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _datetime(message: Any, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    stamp: Timestamp = getattr(message, field)
    return stamp.ToDatetime(tzinfo=UTC)


def _optional(message: Any, field: str) -> str | None:
    value: str | None = getattr(message, field) if message.HasField(field) else None
    return value


# -- metadata: Struct <-> dict, iteratively -------------------------------------------------


def struct_to_dict(struct: Struct, field: str) -> dict[str, Any]:
    """`struct` as plain JSON values, refusing more than MAX_DEPTH nested containers (the
    Struct itself is the first) with InvalidInput naming `field`. Integral numbers become
    ints, as the same JSON over REST would decode."""
    root: dict[str, Any] = {}
    pending: list[tuple[Any, dict[str, Any] | list[Any], int]] = [(struct.fields, root, 1)]
    while pending:
        source, target, depth = pending.pop()
        items: Any = source.items() if isinstance(target, dict) else enumerate(source)
        for key, value in items:
            kind = value.WhichOneof("kind")
            converted: Any
            if kind in ("struct_value", "list_value"):
                if depth + 1 > MAX_DEPTH:
                    message = f"is nested more than {MAX_DEPTH} levels deep"
                    raise InvalidInput(
                        f"{field}: {message}", problems=[FieldProblem(field, message)]
                    )
                if kind == "struct_value":
                    converted = {}
                    pending.append((value.struct_value.fields, converted, depth + 1))
                else:
                    converted = []
                    pending.append((value.list_value.values, converted, depth + 1))
            elif kind == "number_value":
                number = value.number_value
                integral = number.is_integer() and abs(number) <= 2**53
                converted = int(number) if integral else number
            elif kind == "string_value":
                converted = value.string_value
            elif kind == "bool_value":
                converted = value.bool_value
            else:
                converted = None
            if isinstance(target, dict):
                target[key] = converted
            else:
                target.append(converted)
    return root


def dict_to_struct(value: dict[str, Any]) -> Struct:
    """A stored `metadata` (at most MAX_DEPTH deep, so recursion is bounded) as a Struct."""
    struct = Struct()
    struct.update(value)
    return struct


# -- requests ----------------------------------------------------------------------------------


def notification_input(message: pb.NotificationInput, field: str = "") -> NotificationInput:
    """A request's notification as the use cases take it; the rules are theirs."""
    template = None
    if message.HasField("template"):
        template = WhatsAppTemplate(
            name=message.template.name,
            language=message.template.language,
            parameters=list(message.template.parameters),
        )
    metadata = None
    if message.HasField("metadata"):
        metadata = struct_to_dict(message.metadata, f"{field}metadata")
    return NotificationInput(
        channel=_enum_value(CHANNEL_FROM_PROTO, message.channel, unspecified="") or "",
        to=message.to,
        subject=_optional(message, "subject"),
        body=_optional(message, "body"),
        html=_optional(message, "html"),
        data=dict(message.data) or None,
        template=template,
        priority=_enum_value(PRIORITY_FROM_PROTO, message.priority, unspecified="normal")
        or "normal",
        send_at=_datetime(message, "send_at"),
        reference=_optional(message, "reference"),
        metadata=metadata,
    )


def notification_id(value: str, field: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        message = "is not a notification id (a UUID)"
        raise InvalidInput(f"{field} {message}", problems=[FieldProblem(field, message)]) from None


def list_filters(request: pb.ListNotificationsRequest) -> dict[str, Any]:
    """The keyword arguments of `list_notifications`."""
    return {
        "status": _enum_value(STATUS_FROM_PROTO, request.status, unspecified=None),
        "channel": _enum_value(CHANNEL_FROM_PROTO, request.channel, unspecified=None),
        "reference": _optional(request, "reference"),
        "limit": request.page_size or DEFAULT_PAGE,
        "cursor": request.page_token or None,
    }


assert DEFAULT_PAGE <= MAX_PAGE

# -- responses ---------------------------------------------------------------------------------


def event(value: Event) -> pb.Event:
    return pb.Event(
        status=STATUS_TO_PROTO[Status(value.status)],  # type: ignore[arg-type]
        at=timestamp(value.at),
        attempt=value.attempt,
        detail=value.detail,
        sequence=value.sequence or 0,
    )


def notification(value: Notification) -> pb.Notification:
    template = None
    if value.template is not None:
        template = pb.WhatsAppTemplate(
            name=str(value.template.get("name", "")),
            language=str(value.template.get("language", "")),
            parameters=[str(p) for p in value.template.get("parameters") or []],
        )
    return pb.Notification(
        id=str(value.id),
        channel=CHANNEL_TO_PROTO[Channel(value.channel)],  # type: ignore[arg-type]
        to=value.to,
        status=STATUS_TO_PROTO[Status(value.status)],  # type: ignore[arg-type]
        priority=PRIORITY_TO_PROTO[Priority(value.priority)],  # type: ignore[arg-type]
        attempts=value.attempts,
        max_attempts=value.max_attempts,
        created_at=timestamp(value.created_at),
        updated_at=timestamp(value.updated_at),
        subject=value.subject,
        body=value.body,
        html=value.html,
        data=value.data or {},
        template=template,
        send_at=timestamp(value.send_at),
        reference=value.reference,
        metadata=dict_to_struct(value.metadata) if value.metadata is not None else None,
        next_attempt_at=timestamp(value.next_attempt_at),
        provider=value.provider,
        provider_message_id=value.provider_message_id,
        error=value.error,
        sent_at=timestamp(value.sent_at),
        events=[event(e) for e in value.events or []],
    )


def snapshot(value: Notification) -> pb.NotificationEvent:
    """A notification's state when a watch begins, as the event that led to it."""
    last = value.events[-1] if value.events else None
    return pb.NotificationEvent(
        notification_id=str(value.id),
        status=STATUS_TO_PROTO[Status(value.status)],  # type: ignore[arg-type]
        attempt=last.attempt if last else value.attempts,
        detail=last.detail if last else None,
        sequence=(last.sequence or 0) if last else 0,
        created_at=timestamp(last.at if last else value.updated_at),
        snapshot=True,
    )


def status_event(value: StatusEvent) -> pb.NotificationEvent:
    return pb.NotificationEvent(
        notification_id=value.notification_id,
        status=STATUS_TO_PROTO[Status(value.status)],  # type: ignore[arg-type]
        attempt=value.attempt,
        detail=value.detail,
        sequence=value.sequence,
        created_at=timestamp(value.at),
    )


def history_event(notification_id: str, value: Event) -> pb.NotificationEvent:
    """An event read back from a notification's history (to fill a gap in the feed)."""
    return pb.NotificationEvent(
        notification_id=notification_id,
        status=STATUS_TO_PROTO[Status(value.status)],  # type: ignore[arg-type]
        attempt=value.attempt,
        detail=value.detail,
        sequence=value.sequence or 0,
        created_at=timestamp(value.at),
    )
