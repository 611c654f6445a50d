"""Send messages: decode, call the use case, encode; the rules are the use case's."""

from __future__ import annotations

import re

import strawberry

from herald.api.graphql.context import Info
from herald.api.graphql.errors import with_fields
from herald.api.graphql.types.message import (
    BatchRecipientInput,
    Message,
    MessageInput,
    batch_to_domain,
)
from herald.errors import FieldProblem, HeraldError

_SNAKE = re.compile(r"_([a-z])")


def _field(problem: FieldProblem) -> str:
    """A domain field (`recipients[2].data`, `send_at`) as the mutation's argument path."""
    field = _SNAKE.sub(lambda m: m.group(1).upper(), problem.field)
    if field.lower().startswith("idempotency"):
        return "idempotencyKey"
    if field.startswith(("input", "recipients")):
        return field
    return f"input.{field}"


@strawberry.type
class MessageMutationMixin:
    @strawberry.mutation(
        description="Send a template to a recipient: Herald picks the channels, renders them "
        "and accepts one notification per channel used. The same idempotencyKey and input "
        "(over any interface) returns the first result."
    )
    async def send_message(
        self, info: Info, input: MessageInput, idempotency_key: str | None = None
    ) -> Message:
        principal = await info.context.principal()
        try:
            sent = await info.context.resources.messages.send_message(
                principal, input.to_domain("input"), idempotency_key=idempotency_key
            )
        except HeraldError as exc:
            raise with_fields(exc, _field) from exc
        return Message.from_domain(sent.messages[0])

    @strawberry.mutation(
        description="One template to up to 1000 recipients (input's recipient/inline unused), "
        "all or nothing."
    )
    async def send_messages(
        self,
        info: Info,
        input: MessageInput,
        recipients: list[BatchRecipientInput],
        idempotency_key: str | None = None,
    ) -> list[Message]:
        principal = await info.context.principal()
        try:
            sent = await info.context.resources.messages.send_messages(
                principal,
                batch_to_domain(input, recipients, "input"),
                idempotency_key=idempotency_key,
            )
        except HeraldError as exc:
            raise with_fields(exc, _field) from exc
        return [Message.from_domain(m) for m in sent.messages]
