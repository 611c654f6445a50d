"""`MessageQuery`: read one message (merged into `Query` in `schema.py`)."""

from __future__ import annotations

import uuid

import strawberry

from herald.api.graphql.context import Info
from herald.api.graphql.types.message import Message
from herald.errors import FieldProblem, InvalidInput


@strawberry.type
class MessageQuery:
    @strawberry.field(description="One of your messages, with its notifications.")
    async def message(self, info: Info, id: strawberry.ID) -> Message:
        try:
            message_id = uuid.UUID(str(id))
        except ValueError:
            problem = "is not a message id (a UUID)"
            raise InvalidInput(f"id {problem}", problems=[FieldProblem("id", problem)]) from None
        found = await info.context.resources.messages.get_message(
            await info.context.principal(), message_id
        )
        return Message.from_domain(found)
