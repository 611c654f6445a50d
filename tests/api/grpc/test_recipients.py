"""herald.v1.RecipientService through the generated client: every RPC, its errors, scoping."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct

from herald.api.grpc.v1 import recipients_pb2 as pb
from herald.api.grpc.v1.recipients_pb2_grpc import RecipientServiceStub
from tests.api.grpc.conftest import GrpcApp, key_metadata
from tests.api.grpc.test_service import violations
from tests.notifications.conftest import new_key

TOKEN = "f" * 40 + ":APA91b" + "x" * 100


def jane() -> pb.PutRecipientRequest:
    data = Struct()
    data.update({"name": "Jane"})
    return pb.PutRecipientRequest(
        recipient_id="user-42",
        email="jane@example.com",
        phone="+447700900123",
        locale="de",
        timezone="Europe/Berlin",
        data=data,
    )


async def test_every_recipient_rpc(grpc_app: GrpcApp) -> None:
    stub = RecipientServiceStub(grpc_app.channel)
    meta = key_metadata(await new_key("a"))
    put = await stub.PutRecipient(jane(), metadata=meta)
    assert put.created
    assert put.recipient.email == "jane@example.com"
    assert dict(put.recipient.data) == {"name": "Jane"}
    again = await stub.PutRecipient(jane(), metadata=meta)
    assert not again.created

    added = await stub.AddPushToken(
        pb.AddPushTokenRequest(recipient_id="user-42", token=TOKEN), metadata=meta
    )
    assert list(added.push_tokens) == [TOKEN]
    wanted = pb.Preferences(
        channels={"push": False},
        categories={"marketing": False},
        quiet_hours=pb.QuietHours(start="22:00", end="07:00"),
    )
    saved = await stub.SetPreferences(
        pb.SetPreferencesRequest(recipient_id="user-42", preferences=wanted), metadata=meta
    )
    assert saved == wanted
    read = await stub.GetPreferences(
        pb.GetPreferencesRequest(recipient_id="user-42"), metadata=meta
    )
    assert read == wanted
    got = await stub.GetRecipient(pb.GetRecipientRequest(recipient_id="user-42"), metadata=meta)
    assert got.preferences == wanted
    assert not got.HasField("whatsapp")

    await stub.RemovePushToken(
        pb.RemovePushTokenRequest(recipient_id="user-42", token=TOKEN), metadata=meta
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.RemovePushToken(
            pb.RemovePushTokenRequest(recipient_id="user-42", token=TOKEN), metadata=meta
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    await stub.DeleteRecipient(pb.DeleteRecipientRequest(recipient_id="user-42"), metadata=meta)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetRecipient(pb.GetRecipientRequest(recipient_id="user-42"), metadata=meta)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_bad_fields_are_invalid_argument_naming_them(grpc_app: GrpcApp) -> None:
    stub = RecipientServiceStub(grpc_app.channel)
    meta = key_metadata(await new_key("a"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.PutRecipient(
            pb.PutRecipientRequest(recipient_id="u1", email="nope", timezone="Mars/Base"),
            metadata=meta,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(caught.value)) == {"email", "timezone"}

    await stub.PutRecipient(pb.PutRecipientRequest(recipient_id="u1"), metadata=meta)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.AddPushToken(pb.AddPushTokenRequest(recipient_id="u1", token="x"), metadata=meta)
    assert set(violations(caught.value)) == {"token"}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SetPreferences(
            pb.SetPreferencesRequest(
                recipient_id="u1", preferences=pb.Preferences(channels={"fax": False})
            ),
            metadata=meta,
        )
    assert set(violations(caught.value)) == {"preferences.channels.fax"}


async def test_another_keys_recipient_is_not_found(grpc_app: GrpcApp) -> None:
    stub = RecipientServiceStub(grpc_app.channel)
    mine, theirs = key_metadata(await new_key("mine")), key_metadata(await new_key("theirs"))
    await stub.PutRecipient(jane(), metadata=mine)
    calls = [
        stub.GetRecipient(pb.GetRecipientRequest(recipient_id="user-42"), metadata=theirs),
        stub.GetPreferences(pb.GetPreferencesRequest(recipient_id="user-42"), metadata=theirs),
        stub.AddPushToken(
            pb.AddPushTokenRequest(recipient_id="user-42", token=TOKEN), metadata=theirs
        ),
        stub.SetPreferences(pb.SetPreferencesRequest(recipient_id="user-42"), metadata=theirs),
        stub.DeleteRecipient(pb.DeleteRecipientRequest(recipient_id="user-42"), metadata=theirs),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    got = await stub.GetRecipient(pb.GetRecipientRequest(recipient_id="user-42"), metadata=mine)
    assert got.email == "jane@example.com"
