"""`/v1/messages`: send a template to a recipient (or to many), and read a message back.

Thin, as `herald.api.rest.notifications`: decode, call one use case, encode; errors are
domain errors rendered in one place (`herald.api.rest.problems`).
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from herald.api.rest.notifications import IdempotencyKey, provide_principal, require_json
from herald.api.rest.problems import responses
from herald.auth.keys import Principal
from herald.messages.model import Message, MessageBatch, MessageBatchInput, MessageInput
from herald.messages.use_cases import MessageUseCases, SentMessages
from herald.resources import Resources


def message_use_cases(state: State) -> MessageUseCases:
    resources: Resources = state.resources
    return resources.messages


def _accepted(sent: SentMessages, body: Any) -> Response[Any]:
    headers = {"Idempotent-Replayed": "true"} if sent.replayed else None
    return Response(body, status_code=202, headers=headers)


class MessageController(Controller):
    path = "/v1/messages"
    tags = ["messages"]
    security = [{"bearer": []}]
    dependencies = {"principal": Provide(provide_principal)}

    @post(
        "/",
        status_code=202,
        summary="Send a template to a recipient",
        before_request=require_json(envelope=1),
        responses=responses(400, 401, 409, 413, 415, 422, 503),
    )
    async def create(
        self,
        state: State,
        principal: NamedDependency[Principal],
        data: JSONBody[MessageInput],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Message]:
        """Herald picks the channels (the template's, the recipient's addresses and choices,
        `channels`), renders each and accepts one notification per channel used; 202 with
        them and the channels skipped with their reason. A missing template variable is a
        422 naming it; an unknown template or recipient (or another key's) is a 422 naming
        `template` or `recipient`."""
        sent = await message_use_cases(state).send_message(
            principal, data, idempotency_key=idempotency_key
        )
        return _accepted(sent, sent.messages[0])

    @post(
        "/batch",
        status_code=202,
        summary="Send a template to up to 1000 recipients",
        before_request=require_json(envelope=3),
        responses=responses(400, 401, 409, 413, 415, 422, 503),
    )
    async def create_batch(
        self,
        state: State,
        principal: NamedDependency[Principal],
        data: JSONBody[MessageBatchInput],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[MessageBatch]:
        """One message per recipient, all or nothing: a bad one is a 422 naming
        `recipients[i]...`, and nothing is stored."""
        sent = await message_use_cases(state).send_messages(
            principal, data, idempotency_key=idempotency_key
        )
        return _accepted(sent, MessageBatch(sent.messages))

    @get("/{message_id:uuid}", summary="Read a message", responses=responses(401, 404, 503))
    async def read(
        self, state: State, principal: NamedDependency[Principal], message_id: FromPath[uuid.UUID]
    ) -> Message:
        """The message with its notifications (their status and events) and skipped channels."""
        return await message_use_cases(state).get_message(principal, message_id)
