"""herald.v1.NotificationService through the generated client, against real Postgres and Redis."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from herald.api.grpc.v1 import notifications_pb2 as pb
from tests.api.grpc.conftest import EMAIL, INPUTS, SMS, GrpcApp, key_metadata
from tests.notifications.conftest import auth, new_key


async def wait_status(app: GrpcApp, key: str, notification_id: str, status: int) -> pb.Notification:
    deadline = time.monotonic() + 15
    found = None
    while time.monotonic() < deadline:
        found = await app.stub.GetNotification(
            pb.GetNotificationRequest(id=notification_id), metadata=key_metadata(key)
        )
        if found.status == status:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"never reached {status}: {found}")


def violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, error
    found = {}
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found.update({v.field: v.description for v in bad.field_violations})
    return found


@pytest.mark.parametrize("channel", ["email", "sms", "push", "whatsapp"])
async def test_send_get_list_for_each_channel(
    grpc_app: GrpcApp, api_key: str, channel: str
) -> None:
    created = await grpc_app.stub.SendNotification(
        pb.SendNotificationRequest(notification=INPUTS[channel]), metadata=key_metadata(api_key)
    )
    assert created.status == pb.STATUS_QUEUED
    assert created.events[0].status == pb.STATUS_QUEUED
    assert created.events[0].sequence == 1
    done = await wait_status(grpc_app, api_key, created.id, pb.STATUS_SENT)
    assert done.attempts == 1
    assert done.provider == "log"
    assert [e.status for e in done.events][-1] == pb.STATUS_SENT
    page = await grpc_app.stub.ListNotifications(
        pb.ListNotificationsRequest(channel=created.channel), metadata=key_metadata(api_key)
    )
    assert [n.id for n in page.notifications] == [created.id]
    # REST reads the same notification.
    rest = await grpc_app.http.get(f"/v1/notifications/{created.id}", headers=auth(api_key))
    assert rest.json()["status"] == "sent"


async def test_a_batch_is_all_or_nothing_and_names_each_bad_item(
    grpc_app: GrpcApp, api_key: str
) -> None:
    bad = pb.NotificationInput(channel=pb.CHANNEL_SMS, to="not-a-number", body="x")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await grpc_app.stub.SendNotifications(
            pb.SendNotificationsRequest(notifications=[EMAIL, bad]), metadata=key_metadata(api_key)
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(violations(caught.value)) == ["notifications[1].to"]
    empty = await grpc_app.stub.ListNotifications(
        pb.ListNotificationsRequest(), metadata=key_metadata(api_key)
    )
    assert list(empty.notifications) == []
    sent = await grpc_app.stub.SendNotifications(
        pb.SendNotificationsRequest(notifications=[EMAIL, SMS]), metadata=key_metadata(api_key)
    )
    assert [n.channel for n in sent.notifications] == [pb.CHANNEL_EMAIL, pb.CHANNEL_SMS]
    assert not sent.replayed


async def test_list_pages_with_a_token_and_filters(grpc_app: GrpcApp, api_key: str) -> None:
    meta = key_metadata(api_key)
    ids = []
    for reference in ("a", "b", "c"):
        item = pb.NotificationInput()
        item.CopyFrom(SMS)
        item.reference = reference
        created = await grpc_app.stub.SendNotification(
            pb.SendNotificationRequest(notification=item), metadata=meta
        )
        ids.append(created.id)
    first = await grpc_app.stub.ListNotifications(
        pb.ListNotificationsRequest(page_size=2), metadata=meta
    )
    assert [n.id for n in first.notifications] == ids[::-1][:2]
    assert first.next_page_token
    second = await grpc_app.stub.ListNotifications(
        pb.ListNotificationsRequest(page_size=2, page_token=first.next_page_token), metadata=meta
    )
    assert [n.id for n in second.notifications] == [ids[0]]
    assert second.next_page_token == ""
    only_b = await grpc_app.stub.ListNotifications(
        pb.ListNotificationsRequest(reference="b"), metadata=meta
    )
    assert [n.reference for n in only_b.notifications] == ["b"]


async def test_cancel_a_scheduled_one_then_a_sent_one_is_failed_precondition(
    grpc_app: GrpcApp, api_key: str
) -> None:
    meta = key_metadata(api_key)
    later = pb.NotificationInput()
    later.CopyFrom(SMS)
    later.send_at.FromSeconds(int(time.time()) + 3600)
    scheduled = await grpc_app.stub.SendNotification(
        pb.SendNotificationRequest(notification=later), metadata=meta
    )
    assert scheduled.status == pb.STATUS_SCHEDULED
    assert scheduled.send_at.seconds == later.send_at.seconds
    cancelled = await grpc_app.stub.CancelNotification(
        pb.CancelNotificationRequest(id=scheduled.id), metadata=meta
    )
    assert cancelled.status == pb.STATUS_CANCELLED
    sent = await grpc_app.stub.SendNotification(
        pb.SendNotificationRequest(notification=SMS), metadata=meta
    )
    await wait_status(grpc_app, api_key, sent.id, pb.STATUS_SENT)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await grpc_app.stub.CancelNotification(
            pb.CancelNotificationRequest(id=sent.id), metadata=meta
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "can no longer be cancelled" in (caught.value.details() or "")


async def test_missing_unknown_and_revoked_keys_are_unauthenticated(
    grpc_app: GrpcApp, api_key: str
) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from herald.auth.keys import revoke_key
    from herald.db.engine import create_session_maker
    from tests.conftest import DATABASE_URL

    revoked = await new_key("to-revoke")
    engine = create_async_engine(DATABASE_URL)
    async with create_session_maker(engine)() as session, session.begin():
        await revoke_key(session, "to-revoke")
    await engine.dispose()
    for metadata in (
        (),
        (("authorization", "Bearer hk_unknown"),),
        (("authorization", "Basic x"),),
        key_metadata(revoked),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await grpc_app.stub.ListNotifications(pb.ListNotificationsRequest(), metadata=metadata)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, metadata


async def test_another_keys_notification_and_a_bad_id_are_not_found_and_invalid(
    grpc_app: GrpcApp, api_key: str
) -> None:
    other = await new_key("other")
    created = await grpc_app.stub.SendNotification(
        pb.SendNotificationRequest(notification=SMS), metadata=key_metadata(other)
    )
    for call in (grpc_app.stub.GetNotification, grpc_app.stub.CancelNotification):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(pb.GetNotificationRequest(id=created.id), metadata=key_metadata(api_key))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await grpc_app.stub.GetNotification(
            pb.GetNotificationRequest(id="nope"), metadata=key_metadata(api_key)
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(caught.value) == {"id": "is not a notification id (a UUID)"}


def _nested(depth: int) -> pb.NotificationInput:
    """SMS with `metadata` nested `depth` containers deep (the Struct itself the first)."""
    item = pb.NotificationInput()
    item.CopyFrom(SMS)
    inner = item.metadata
    for _ in range(depth - 1):
        inner = inner.fields["a"].struct_value
    inner.fields["leaf"].string_value = "x"
    return item


@pytest.mark.parametrize(
    ("item", "fields"),
    [
        (pb.NotificationInput(), {"channel"}),
        (pb.NotificationInput(channel=99, to="+447911123456", body="x"), {"channel"}),
        (pb.NotificationInput(channel=pb.CHANNEL_EMAIL, to="nobody", body="x"), {"to", "subject"}),
        (
            pb.NotificationInput(channel=pb.CHANNEL_SMS, to="+447911123456", body="x" * 2000),
            {"body"},
        ),
        (
            pb.NotificationInput(channel=pb.CHANNEL_SMS, to="+447911123456", priority=7, body="x"),
            {"priority"},
        ),
        (_nested(33), {"metadata"}),
    ],
    ids=["empty", "wrong-enum", "bad-address", "too-long", "wrong-priority", "too-deep"],
)
async def test_bad_input_is_invalid_argument_naming_each_field(
    grpc_app: GrpcApp, api_key: str, item: pb.NotificationInput, fields: set[str]
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await grpc_app.stub.SendNotification(
            pb.SendNotificationRequest(notification=item), metadata=key_metadata(api_key)
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fields <= set(violations(caught.value)), violations(caught.value)


async def test_metadata_32_levels_deep_is_kept(grpc_app: GrpcApp, api_key: str) -> None:
    created = await grpc_app.stub.SendNotification(
        pb.SendNotificationRequest(notification=_nested(32)), metadata=key_metadata(api_key)
    )
    rest = await grpc_app.http.get(f"/v1/notifications/{created.id}", headers=auth(api_key))
    depth, value = 0, rest.json()["metadata"]
    while isinstance(value, dict):
        depth, value = depth + 1, value.get("a", value.get("leaf"))
    assert depth == 32


def _varint(value: int) -> bytes:
    out = b""
    while value > 0x7F:
        out, value = out + bytes([value & 0x7F | 0x80]), value >> 7
    return out + bytes([value])


def _field(tag: int, payload: bytes) -> bytes:
    return bytes([tag]) + _varint(len(payload)) + payload


def _struct_bytes(depth: int) -> bytes:
    """A Struct `{"a": {"a": ...}}` `depth` deep, as bytes (protobuf cannot build it)."""
    struct = b""
    for _ in range(depth):
        entry = _field(0x0A, b"a") + _field(0x12, _field(0x2A, struct))
        struct = _field(0x0A, entry)
    return struct


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xff\xff",
        _field(0x0A, _field(0x12, b"\xff\xfe\xfd")),
        _field(0x0A, _field(0x5A, _struct_bytes(150))),
    ],
    ids=["garbage", "invalid-utf8", "nested-past-protobufs-limit"],
)
async def test_bytes_that_are_not_the_request_are_invalid_argument(
    grpc_app: GrpcApp, api_key: str, raw: bytes
) -> None:
    call = grpc_app.channel.unary_unary(
        "/herald.v1.NotificationService/SendNotification",
        request_serializer=lambda data: data,
        response_deserializer=pb.Notification.FromString,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(raw, metadata=key_metadata(api_key))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()


async def test_a_message_over_one_mib_is_resource_exhausted(
    grpc_app: GrpcApp, api_key: str
) -> None:
    item = pb.NotificationInput(channel=pb.CHANNEL_EMAIL, to="a@example.com", subject="s")
    item.body = "x" * (1024 * 1024 + 1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await grpc_app.stub.SendNotification(
            pb.SendNotificationRequest(notification=item), metadata=key_metadata(api_key)
        )
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_one_idempotency_key_over_rest_then_grpc_is_one_request(
    grpc_app: GrpcApp, api_key: str
) -> None:
    body = {"channel": "sms", "to": "+447911123456", "body": "Your code is 123456"}
    headers = {**auth(api_key), "Idempotency-Key": "order-42"}
    first = await grpc_app.http.post("/v1/notifications", json=body, headers=headers)
    assert first.status_code == 202, first.text
    call = grpc_app.stub.SendNotification(
        pb.SendNotificationRequest(notification=SMS),
        metadata=key_metadata(api_key, idempotency_key="order-42"),
    )
    again = await call
    assert again.id == first.json()["id"]
    assert ("idempotent-replayed", "true") in tuple(await call.initial_metadata())
    # ...and gRPC first, REST second.
    batch = await grpc_app.stub.SendNotifications(
        pb.SendNotificationsRequest(notifications=[SMS]),
        metadata=key_metadata(api_key, idempotency_key="batch-1"),
    )
    rest = await grpc_app.http.post(
        "/v1/notifications/batch",
        json={"notifications": [body]},
        headers={**auth(api_key), "Idempotency-Key": "batch-1"},
    )
    assert [n["id"] for n in rest.json()["notifications"]] == [batch.notifications[0].id]
    assert rest.headers["Idempotent-Replayed"] == "true"
    listed = await grpc_app.stub.ListNotifications(
        pb.ListNotificationsRequest(), metadata=key_metadata(api_key)
    )
    assert len(listed.notifications) == 2
