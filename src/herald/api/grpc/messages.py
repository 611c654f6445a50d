"""`herald.v1.MessageService`: send a template to a recipient (or many), read a message.

Decode, call one use case, encode, as `NotificationService`; errors map in one place
(`herald.api.grpc.status`). The request's fields convert to the domain's message input here;
the rules are the use case's.
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc

from herald.api.grpc import convert
from herald.api.grpc import status as rpc
from herald.api.grpc.v1 import messages_pb2 as pb
from herald.auth.keys import Principal
from herald.errors import FieldProblem, InvalidInput
from herald.messages.model import (
    BatchRecipient,
    InlineRecipient,
    Message,
    MessageBatchInput,
    MessageInput,
)
from herald.resources import Resources
from herald.vocabulary import Channel, Priority

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["MessageService"].full_name
Context = grpc.aio.ServicerContext[Any, Any]


def _inline(message: pb.InlineRecipient, field: str) -> InlineRecipient:
    return InlineRecipient(
        email=convert._optional(message, "email"),
        phone=convert._optional(message, "phone"),
        whatsapp=convert._optional(message, "whatsapp"),
        push_tokens=list(message.push_tokens),
        locale=convert._optional(message, "locale"),
        timezone=convert._optional(message, "timezone"),
        data=convert.struct_to_dict(message.data, f"{field}.data")
        if message.HasField("data")
        else {},
    )


def _recipient(message: Any, field: str) -> str | InlineRecipient:
    which = message.WhichOneof("recipient")
    if which == "inline":
        return _inline(message.inline, field)
    if which == "recipient_id":
        return str(message.recipient_id)
    raise InvalidInput(
        f"{field} is required", problems=[FieldProblem(field, "set recipient_id or inline")]
    )


def _fields(message: pb.MessageInput) -> dict[str, Any]:
    """What a single message and a batch share."""
    return {
        "template": message.template,
        "data": convert.struct_to_dict(message.data, "data") if message.HasField("data") else {},
        "channels": [
            convert._enum_value(convert.CHANNEL_FROM_PROTO, c, unspecified="") or ""
            for c in message.channels
        ]
        or None,
        "routing": message.routing or "all",
        "locale": convert._optional(message, "locale"),
        "priority": convert._enum_value(
            convert.PRIORITY_FROM_PROTO, message.priority, unspecified="normal"
        )
        or "normal",
        "send_at": convert._datetime(message, "send_at"),
        "reference": convert._optional(message, "reference"),
        "metadata": convert.struct_to_dict(message.metadata, "metadata")
        if message.HasField("metadata")
        else None,
    }


def _message_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        problem = "is not a message id (a UUID)"
        raise InvalidInput(f"id {problem}", problems=[FieldProblem("id", problem)]) from None


def message_input(message: pb.MessageInput) -> MessageInput:
    return MessageInput(recipient=_recipient(message, "recipient"), **_fields(message))


def batch_input(request: pb.SendMessagesRequest) -> MessageBatchInput:
    recipients: list[str | BatchRecipient] = []
    for index, entry in enumerate(request.recipients):
        field = f"recipients[{index}]"
        data = convert.struct_to_dict(entry.data, f"{field}.data") if entry.HasField("data") else {}
        recipients.append(BatchRecipient(recipient=_recipient(entry, field), data=data))
    return MessageBatchInput(recipients=recipients, **_fields(request.message))


def message(value: Message) -> pb.Message:
    def channel(name: str) -> Any:
        return convert.CHANNEL_TO_PROTO[Channel(name)]

    return pb.Message(
        id=str(value.id),
        template=value.template,
        template_version=value.template_version,
        routing=value.routing,
        channels=[channel(c) for c in value.channels],
        notifications=[convert.notification(n) for n in value.notifications],
        skipped=[pb.Skipped(channel=channel(s.channel), reason=s.reason) for s in value.skipped],
        priority=convert.PRIORITY_TO_PROTO[Priority(value.priority)],  # type: ignore[arg-type]
        created_at=convert.timestamp(value.created_at),
        recipient_id=value.recipient,
        locale=value.locale,
        pending=[channel(c) for c in value.pending],
        deferred_until=convert.timestamp(value.deferred.until) if value.deferred else None,
        send_at=convert.timestamp(value.send_at),
        reference=value.reference,
        metadata=convert.dict_to_struct(value.metadata) if value.metadata is not None else None,
    )


class MessageService:
    def __init__(self, resources: Resources) -> None:
        self._resources = resources

    async def _principal(self, context: Context) -> Principal:
        return await self._resources.authenticator.authenticate(
            rpc.metadata(context, "authorization")
        )

    async def send_message(self, request: pb.SendMessageRequest, context: Context) -> pb.Message:
        principal = await self._principal(context)
        sent = await self._resources.messages.send_message(
            principal,
            message_input(request.message),
            idempotency_key=rpc.metadata(context, "idempotency-key"),
        )
        if sent.replayed:
            await context.send_initial_metadata((("idempotent-replayed", "true"),))
        return message(sent.messages[0])

    async def send_messages(
        self, request: pb.SendMessagesRequest, context: Context
    ) -> pb.SendMessagesResponse:
        principal = await self._principal(context)
        sent = await self._resources.messages.send_messages(
            principal,
            batch_input(request),
            idempotency_key=rpc.metadata(context, "idempotency-key"),
        )
        if sent.replayed:
            await context.send_initial_metadata((("idempotent-replayed", "true"),))
        return pb.SendMessagesResponse(
            messages=[message(m) for m in sent.messages], replayed=sent.replayed
        )

    async def get_message(self, request: pb.GetMessageRequest, context: Context) -> pb.Message:
        principal = await self._principal(context)
        found = await self._resources.messages.get_message(principal, _message_id(request.id))
        return message(found)

    def handler(self) -> grpc.GenericRpcHandler[Any, Any]:
        """The service's methods, with requests that fail to decode answered INVALID_ARGUMENT."""
        unary: dict[str, tuple[Any, Any, Any]] = {
            "SendMessage": (self.send_message, pb.SendMessageRequest, pb.Message),
            "SendMessages": (self.send_messages, pb.SendMessagesRequest, pb.SendMessagesResponse),
            "GetMessage": (self.get_message, pb.GetMessageRequest, pb.Message),
        }
        methods = {
            name: grpc.unary_unary_rpc_method_handler(
                rpc.unary(name, method),
                request_deserializer=rpc.decoder(request),
                response_serializer=response.SerializeToString,
            )
            for name, (method, request, response) in unary.items()
        }
        return grpc.method_handlers_generic_handler(SERVICE_NAME, methods)
