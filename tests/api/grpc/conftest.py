"""Fixtures for the gRPC interface: the app in-process with gRPC on a free port, a channel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
from litestar import Litestar

from herald.api.grpc.v1 import notifications_pb2 as pb
from herald.api.grpc.v1.notifications_pb2_grpc import NotificationServiceStub
from tests.conftest import make_settings, running_app
from tests.notifications.conftest import new_key
from tests.support.process import free_port


@dataclass
class GrpcApp:
    app: Litestar
    http: httpx.AsyncClient
    channel: grpc.aio.Channel
    stub: NotificationServiceStub
    port: int


@pytest.fixture
async def grpc_app() -> AsyncIterator[GrpcApp]:
    port = free_port()
    settings = make_settings(enable_grpc=True, grpc_port=port, retry_base_seconds=0.05)
    async with (
        running_app(settings) as (app, http),
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        yield GrpcApp(app, http, channel, NotificationServiceStub(channel), port)


def key_metadata(key: str, **extra: str) -> tuple[tuple[str, str], ...]:
    return (
        ("authorization", f"Bearer {key}"),
        *((k.replace("_", "-"), v) for k, v in extra.items()),
    )


EMAIL = pb.NotificationInput(
    channel=pb.CHANNEL_EMAIL, to="jane@example.com", subject="Hi", body="Hello"
)
SMS = pb.NotificationInput(channel=pb.CHANNEL_SMS, to="+447911123456", body="Your code is 123456")
PUSH = pb.NotificationInput(
    channel=pb.CHANNEL_PUSH, to="f" * 40 + ":APA91b" + "x" * 100, body="Ping", data={"k": "v"}
)
WHATSAPP = pb.NotificationInput(
    channel=pb.CHANNEL_WHATSAPP,
    to="+447911123456",
    template=pb.WhatsAppTemplate(name="order_update", language="en_US", parameters=["42"]),
)
INPUTS: dict[str, Any] = {"email": EMAIL, "sms": SMS, "push": PUSH, "whatsapp": WHATSAPP}


@pytest.fixture
async def api_key() -> str:
    return await new_key("grpc-tests")
