"""The gRPC server's operations: the Watch stream, health, reflection, the port, metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from herald.api.grpc.server import GrpcStartError
from herald.api.grpc.v1 import notifications_pb2 as pb
from herald.resources import Resources
from tests.api.grpc.conftest import SMS, GrpcApp, key_metadata
from tests.conftest import make_settings, running_app
from tests.notifications.conftest import new_key

SERVICE = "herald.v1.NotificationService"


async def next_event(stream: AsyncIterator[pb.NotificationEvent]) -> pb.NotificationEvent:
    async with asyncio.timeout(15):
        return await anext(stream)


async def test_watch_sends_a_snapshot_then_each_event_with_its_sequence(
    grpc_app: GrpcApp, api_key: str
) -> None:
    meta = key_metadata(api_key)
    later = pb.NotificationInput()
    later.CopyFrom(SMS)
    later.send_at.FromSeconds(int(time.time()) + 3600)
    scheduled = await grpc_app.stub.SendNotification(
        pb.SendNotificationRequest(notification=later), metadata=meta
    )
    call = grpc_app.stub.WatchNotifications(
        pb.WatchNotificationsRequest(ids=[scheduled.id]), metadata=meta
    )
    stream = aiter(call)
    snapshot = await next_event(stream)
    assert (snapshot.notification_id, snapshot.status, snapshot.sequence, snapshot.snapshot) == (
        scheduled.id,
        pb.STATUS_SCHEDULED,
        1,
        True,
    )
    await grpc_app.stub.CancelNotification(
        pb.CancelNotificationRequest(id=scheduled.id), metadata=meta
    )
    cancelled = await next_event(stream)
    assert (cancelled.status, cancelled.sequence, cancelled.snapshot) == (
        pb.STATUS_CANCELLED,
        2,
        False,
    )
    call.cancel()


async def test_watch_of_all_follows_queued_sending_sent_and_only_the_callers_own(
    grpc_app: GrpcApp, api_key: str
) -> None:
    other = await new_key("other")
    call = grpc_app.stub.WatchNotifications(
        pb.WatchNotificationsRequest(), metadata=key_metadata(api_key)
    )
    stream = aiter(call)
    # The server sends the initial metadata once the watch is subscribed.
    assert ("herald-watch", "subscribed") in tuple(
        await asyncio.wait_for(call.initial_metadata(), 10)
    )
    await grpc_app.stub.SendNotification(
        pb.SendNotificationRequest(notification=SMS), metadata=key_metadata(other)
    )
    mine = await grpc_app.stub.SendNotification(
        pb.SendNotificationRequest(notification=SMS), metadata=key_metadata(api_key)
    )
    seen = []
    while not seen or seen[-1][0] != pb.STATUS_SENT:
        event = await next_event(stream)
        assert event.notification_id == mine.id  # never the other key's
        seen.append((event.status, event.sequence))
    assert seen == [(pb.STATUS_QUEUED, 1), (pb.STATUS_SENDING, 2), (pb.STATUS_SENT, 3)]
    call.cancel()


async def test_watch_of_another_keys_id_is_not_found(grpc_app: GrpcApp, api_key: str) -> None:
    other = await new_key("other")
    theirs = await grpc_app.stub.SendNotification(
        pb.SendNotificationRequest(notification=SMS), metadata=key_metadata(other)
    )
    call = grpc_app.stub.WatchNotifications(
        pb.WatchNotificationsRequest(ids=[theirs.id]), metadata=key_metadata(api_key)
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await next_event(aiter(call))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_shutdown_turns_health_not_serving_and_ends_watches_cleanly(api_key: str) -> None:
    from tests.support.process import free_port

    port = free_port()
    async with (
        running_app(make_settings(enable_grpc=True, grpc_port=port)) as (app, _),
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", SERVICE):
            answer = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        updates = aiter(health.Watch(health_pb2.HealthCheckRequest(service=SERVICE)))
        assert (await anext(updates)).status == health_pb2.HealthCheckResponse.SERVING
        from herald.api.grpc.v1.notifications_pb2_grpc import NotificationServiceStub

        watch = NotificationServiceStub(channel).WatchNotifications(
            pb.WatchNotificationsRequest(), metadata=key_metadata(api_key)
        )
        await asyncio.wait_for(watch.initial_metadata(), 10)
        resources: Resources = app.state.resources
        assert resources.grpc is not None
        started = time.monotonic()
        stopping = asyncio.create_task(
            resources.grpc.stop(resources.settings.shutdown_grace_seconds)
        )
        async with asyncio.timeout(5):
            assert (await anext(updates)).status == health_pb2.HealthCheckResponse.NOT_SERVING
        async with asyncio.timeout(5):
            assert [event async for event in watch] == []
        assert await watch.code() == grpc.StatusCode.OK
        await stopping
        assert time.monotonic() - started < resources.settings.shutdown_grace_seconds + 1


async def test_reflection_lists_the_service_and_health(grpc_app: GrpcApp) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(grpc_app.channel)

    async def requests() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")
        yield reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE)

    answers = [answer async for answer in stub.ServerReflectionInfo(requests())]
    names = {s.name for s in answers[0].list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health"} <= names
    assert answers[1].file_descriptor_response.file_descriptor_proto


async def test_a_second_server_on_the_same_port_is_a_clear_start_up_error(
    grpc_app: GrpcApp,
) -> None:
    from herald.api.grpc.server import GrpcServer

    second = GrpcServer(grpc_app.app.state.resources)  # the same settings: the same port
    with pytest.raises(
        GrpcStartError, match=f"cannot listen for gRPC on 127.0.0.1:{grpc_app.port}"
    ):
        await second.start()


async def test_enable_grpc_false_or_a_worker_only_process_opens_no_port() -> None:
    from tests.support.process import free_port

    for settings in (
        make_settings(grpc_port=free_port(), enable_grpc=False),
        make_settings(enable_grpc=True, grpc_port=free_port(), enable_api=False),
    ):
        async with running_app(settings) as (app, _):
            assert app.state.resources.grpc is None
            async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(), timeout=1
                    )
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_calls_are_counted_by_method_and_code(grpc_app: GrpcApp, api_key: str) -> None:
    from herald import metrics

    def count(code: str) -> float:
        return metrics.grpc_requests.labels("GetNotification", code)._value.get()

    before_ok, before_missing = count("OK"), count("NOT_FOUND")
    created = await grpc_app.stub.SendNotification(
        pb.SendNotificationRequest(notification=SMS), metadata=key_metadata(api_key)
    )
    await grpc_app.stub.GetNotification(
        pb.GetNotificationRequest(id=created.id), metadata=key_metadata(api_key)
    )
    with pytest.raises(grpc.aio.AioRpcError):
        await grpc_app.stub.GetNotification(
            pb.GetNotificationRequest(id="00000000-0000-0000-0000-000000000001"),
            metadata=key_metadata(api_key),
        )
    assert (count("OK"), count("NOT_FOUND")) == (before_ok + 1, before_missing + 1)
    scraped = (await grpc_app.http.get("/metrics")).text
    assert 'herald_grpc_requests_total{code="OK",method="GetNotification"}' in scraped
    assert "herald_grpc_request_duration_seconds_bucket" in scraped


async def test_health_is_not_serving_while_postgres_is_cut(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy.engine import make_url

    from herald.api.grpc import server
    from tests.conftest import DATABASE_URL
    from tests.support.process import free_port
    from tests.support.tcp_proxy import TcpProxy

    monkeypatch.setattr(server, "HEALTH_INTERVAL_SECONDS", 0.05)
    url = make_url(DATABASE_URL)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    port = free_port()
    settings = make_settings(
        enable_grpc=True,
        grpc_port=port,
        enable_workers=False,
        database_url=url.set(port=proxy.port).render_as_string(hide_password=False),
        database_timeout_seconds=1,
    )
    try:
        async with (
            running_app(settings),
            grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
        ):
            health = health_pb2_grpc.HealthStub(channel)

            async def wait_for(status: int) -> None:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    answer = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE))
                    if answer.status == status:
                        return
                    await asyncio.sleep(0.02)
                raise AssertionError(f"health never became {status}")

            await wait_for(health_pb2.HealthCheckResponse.SERVING)
            proxy.pause()
            await wait_for(health_pb2.HealthCheckResponse.NOT_SERVING)
            proxy.resume()
            await wait_for(health_pb2.HealthCheckResponse.SERVING)
    finally:
        proxy.stop()


async def test_a_watch_past_its_deadline_ends_deadline_exceeded_and_the_server_carries_on(
    grpc_app: GrpcApp, api_key: str
) -> None:
    from herald import metrics

    def failures() -> float:
        return sum(
            metrics.grpc_requests.labels("WatchNotifications", code)._value.get()
            for code in ("INTERNAL", "UNKNOWN")
        )

    before = failures()
    meta = key_metadata(api_key)
    later = pb.NotificationInput()
    later.CopyFrom(SMS)
    later.send_at.FromSeconds(int(time.time()) + 3600)
    scheduled = await grpc_app.stub.SendNotification(
        pb.SendNotificationRequest(notification=later), metadata=meta
    )
    # Nothing happens to it for an hour, so the watch can only end by its one-second deadline.
    call = grpc_app.stub.WatchNotifications(
        pb.WatchNotificationsRequest(ids=[scheduled.id]), metadata=meta, timeout=1
    )
    seen: list[tuple[int, bool]] = []

    async def follow() -> None:
        async with asyncio.timeout(10):  # a hang fails here instead of hanging the suite
            async for event in call:
                seen.append((event.status, event.snapshot))

    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await follow()
    elapsed = time.monotonic() - started
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, caught.value
    assert seen == [(pb.STATUS_SCHEDULED, True)]
    assert 0.9 <= elapsed < 5, elapsed
    # The server is unharmed: the next calls, unary and streaming, succeed.
    again = await grpc_app.stub.GetNotification(
        pb.GetNotificationRequest(id=scheduled.id), metadata=meta, timeout=5
    )
    assert again.status == pb.STATUS_SCHEDULED
    sent = await grpc_app.stub.SendNotification(
        pb.SendNotificationRequest(notification=SMS), metadata=meta, timeout=5
    )
    watch = grpc_app.stub.WatchNotifications(
        pb.WatchNotificationsRequest(ids=[sent.id]), metadata=meta, timeout=15
    )
    async with asyncio.timeout(15):
        async for event in watch:
            if event.status == pb.STATUS_SENT:
                break
    watch.cancel()
    # Nor did the server count the expired watch as its own failure.
    assert failures() == before
