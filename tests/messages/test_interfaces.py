"""The message operations over GraphQL and gRPC: the same rules, errors and idempotency as
REST (one request across interfaces)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from herald.api.grpc.v1 import messages_pb2 as mpb
from herald.api.grpc.v1 import notifications_pb2 as pb
from herald.api.grpc.v1.messages_pb2_grpc import MessageServiceStub
from tests.conftest import make_settings, running_app
from tests.messages.support import PUSH_TOKEN, Providers, auth, send, welcome_jane
from tests.support.process import free_port

MESSAGE_FIELDS = """
  id template templateVersion routing channels locale recipient pending deferredUntil
  notifications { id channel to status subject }
  skipped { channel reason }
"""


async def _graphql(client: httpx.AsyncClient, key: str, query: str, **variables: Any) -> Any:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=auth(key)
    )
    assert response.status_code in (200, 400), response.text
    return response.json()


async def test_graphql_send_read_and_errors(
    client: httpx.AsyncClient, api_key: str, providers: Providers
) -> None:
    await welcome_jane(client, api_key)
    sent = await _graphql(
        client,
        api_key,
        f"mutation($input: MessageInput!) {{ sendMessage(input: $input) {{ {MESSAGE_FIELDS} }} }}",
        input={"template": "welcome", "recipient": "user-42", "data": {"name": "Jane"}},
    )
    assert "errors" not in sent, sent
    message = sent["data"]["sendMessage"]
    assert message["channels"] == ["EMAIL", "PUSH"]
    assert message["skipped"] == [{"channel": "SMS", "reason": "NOT_IN_TEMPLATE"}]
    assert message["notifications"][0]["subject"] == "Willkommen, Jane"
    assert message["locale"] == "de"

    read = await _graphql(
        client,
        api_key,
        f"query($id: ID!) {{ message(id: $id) {{ {MESSAGE_FIELDS} }} }}",
        id=message["id"],
    )
    assert read["data"]["message"]["id"] == message["id"]

    missing = await _graphql(
        client,
        api_key,
        "mutation($input: MessageInput!) { sendMessage(input: $input) { id } }",
        input={"template": "welcome", "recipient": "user-42"},
    )
    (error,) = missing["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "input.data.name"}

    both = await _graphql(
        client,
        api_key,
        "mutation($input: MessageInput!) { sendMessage(input: $input) { id } }",
        input={"template": "welcome", "recipient": "user-42", "inline": {"email": "a@b.co"}},
    )
    assert both["errors"][0]["extensions"]["field"] == "input.recipient"
    unknown = await _graphql(client, api_key, 'query { message(id: "not-a-uuid") { id } }')
    assert unknown["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    other = await _graphql(
        client, api_key, 'query { message(id: "00000000-0000-4000-8000-000000000000") { id } }'
    )
    assert other["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_graphql_batch(client: httpx.AsyncClient, api_key: str, providers: Providers) -> None:
    await welcome_jane(client, api_key)
    sent = await _graphql(
        client,
        api_key,
        """mutation($input: MessageInput!, $recipients: [BatchRecipientInput!]!) {
             sendMessages(input: $input, recipients: $recipients) { recipient channels } }""",
        input={"template": "welcome", "data": {"name": "friend"}},
        recipients=[
            {"recipient": "user-42"},
            {"inline": {"email": "kim@example.com"}, "data": {"name": "Kim"}},
        ],
    )
    assert "errors" not in sent, sent
    assert sent["data"]["sendMessages"] == [
        {"recipient": "user-42", "channels": ["EMAIL", "PUSH"]},
        {"recipient": None, "channels": ["EMAIL"]},
    ]


@pytest.fixture
async def grpc_app(
    providers: Providers,
) -> AsyncIterator[tuple[httpx.AsyncClient, MessageServiceStub]]:
    port = free_port()
    settings = make_settings(enable_grpc=True, grpc_port=port)
    async with (
        running_app(settings) as (_, http),
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        yield http, MessageServiceStub(channel)


def _metadata(key: str, **extra: str) -> tuple[tuple[str, str], ...]:
    return (
        ("authorization", f"Bearer {key}"),
        *((k.replace("_", "-"), v) for k, v in extra.items()),
    )


async def test_grpc_send_get_batch_errors_and_idempotency_across_rest(
    grpc_app: tuple[httpx.AsyncClient, MessageServiceStub], api_key: str
) -> None:
    http, stub = grpc_app
    await welcome_jane(http, api_key)
    data = {"name": "Jane"}
    request = mpb.SendMessageRequest(
        message=mpb.MessageInput(template="welcome", recipient_id="user-42")
    )
    request.message.data.update(data)
    sent = await stub.SendMessage(request, metadata=_metadata(api_key, idempotency_key="k-1"))
    assert list(sent.channels) == [pb.CHANNEL_EMAIL, pb.CHANNEL_PUSH]
    assert [(s.channel, s.reason) for s in sent.skipped] == [(pb.CHANNEL_SMS, "not_in_template")]
    assert sent.notifications[1].to == PUSH_TOKEN
    assert sent.locale == "de"

    got = await stub.GetMessage(mpb.GetMessageRequest(id=sent.id), metadata=_metadata(api_key))
    assert got.id == sent.id
    assert [n.id for n in got.notifications] == [n.id for n in sent.notifications]

    # the same key and input over REST is the same request
    again = await send(
        http,
        api_key,
        {"template": "welcome", "recipient": "user-42", "data": data},
        **{"Idempotency-Key": "k-1"},
    )
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == sent.id

    missing = mpb.SendMessageRequest(
        message=mpb.MessageInput(template="welcome", recipient_id="user-42")
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SendMessage(missing, metadata=_metadata(api_key))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    status.details[0].Unpack(bad)
    assert [v.field for v in bad.field_violations] == ["data.name"]

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetMessage(
            mpb.GetMessageRequest(id="00000000-0000-4000-8000-000000000000"),
            metadata=_metadata(api_key),
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND

    batch = mpb.SendMessagesRequest(
        message=mpb.MessageInput(template="welcome", channels=[pb.CHANNEL_EMAIL]),
        recipients=[
            mpb.BatchRecipient(recipient_id="user-42"),
            mpb.BatchRecipient(inline=mpb.InlineRecipient(email="kim@example.com")),
        ],
    )
    for entry in batch.recipients:
        entry.data.update({"name": "friend"})
    answer = await stub.SendMessages(batch, metadata=_metadata(api_key))
    assert [len(m.notifications) for m in answer.messages] == [1, 1]
    assert answer.messages[1].notifications[0].to == "kim@example.com"
