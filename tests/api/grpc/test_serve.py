"""`herald serve` answers gRPC beside HTTP; a second process cannot take the same port."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from herald.api.grpc.v1 import notifications_pb2 as pb
from herald.api.grpc.v1.notifications_pb2_grpc import NotificationServiceStub
from tests.api.grpc.conftest import SMS, key_metadata
from tests.notifications.conftest import new_key
from tests.support.process import HeraldProcess, free_port

pytestmark = pytest.mark.process
Start = Callable[..., HeraldProcess]


def test_serve_answers_grpc_refuses_a_second_process_and_drains_on_sigterm(herald: Start) -> None:
    key = asyncio.run(new_key("serve"))
    port = free_port()
    process = herald(ENABLE_GRPC="true", GRPC_PORT=str(port))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        answer = health.Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        stub = NotificationServiceStub(channel)
        created = stub.SendNotification(
            pb.SendNotificationRequest(notification=SMS), metadata=key_metadata(key), timeout=10
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            found = stub.GetNotification(
                pb.GetNotificationRequest(id=created.id), metadata=key_metadata(key), timeout=5
            )
            if found.status == pb.STATUS_SENT:
                break
            time.sleep(0.05)
        assert found.status == pb.STATUS_SENT

    second = herald(wait_ready=False, ENABLE_GRPC="true", GRPC_PORT=str(port))
    assert second.wait(timeout=30) != 0
    assert '"event":"grpc.cannot_listen"' in second.logs()
    assert f"cannot listen for gRPC on 127.0.0.1:{port}" in second.logs()

    # SIGTERM: a watch ends OK, and gRPC stops before the lifespan ends, inside the grace.
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        watch = NotificationServiceStub(channel).WatchNotifications(
            pb.WatchNotificationsRequest(), metadata=key_metadata(key), timeout=30
        )
        assert ("herald-watch", "subscribed") in tuple(watch.initial_metadata())
        started = time.monotonic()
        process.signal(signal.SIGTERM)
        assert list(watch) == []
        assert watch.code() == grpc.StatusCode.OK
        # uvicorn re-raises the captured SIGTERM once it has shut down cleanly.
        assert process.wait(timeout=15) in (0, -signal.SIGTERM)
    assert time.monotonic() - started < 5 + 3  # SHUTDOWN_GRACE_SECONDS is 5 in the tests
    logs = process.logs()
    assert logs.index('"event":"grpc.stopped"') < logs.index('"event":"herald.stopped"')
    assert "Application shutdown complete." in logs
