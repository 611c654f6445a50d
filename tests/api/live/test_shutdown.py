"""On SIGTERM, a GraphQL subscription and an SSE stream end by themselves inside the drain
budget, so they never hold up the shutdown (the WebSocket stream's twin is in test_stream.py)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import base_env
from tests.notifications.conftest import auth, new_key
from tests.support.process import HeraldProcess

pytestmark = pytest.mark.process

GRACE = 2.0
EMAIL = {"channel": "email", "to": "jane@example.com", "subject": "Hi", "body": "Hello"}
WATCH = "subscription W($id: ID) { notificationEvents(id: $id) { status sequence } }"


def scheduled_an_hour_ahead(process: HeraldProcess, key: str) -> str:
    """A notification that cannot finish during the test: its streams never end on their own."""
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    response = httpx.post(
        f"{process.url}/v1/notifications", json={**EMAIL, "send_at": later}, headers=auth(key)
    )
    assert response.status_code == 202, response.text
    notification_id: str = response.json()["id"]
    return notification_id


async def open_subscription(process: HeraldProcess, key: str, notification_id: str) -> Any:
    """A graphql-transport-ws socket whose subscription has delivered its snapshot (so it is live)."""
    url = process.url.replace("http://", "ws://") + "/graphql"
    ws = await websockets.connect(url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    await ws.send(json.dumps({"type": "connection_init", "payload": auth(key)}))
    assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
    await ws.send(
        json.dumps(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": WATCH, "variables": {"id": notification_id}},
            }
        )
    )
    first = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert first["type"] == "next", first
    assert first["payload"]["data"]["notificationEvents"]["status"] == "SCHEDULED"
    return ws


async def messages_until_closed(ws: Any) -> tuple[list[dict[str, Any]], int | None]:
    """Every message until the server closes the socket, and the close code it sent."""
    messages: list[dict[str, Any]] = []
    try:
        while True:
            messages.append(json.loads(await ws.recv()))
    except websockets.ConnectionClosed as closed:
        return messages, closed.rcvd.code if closed.rcvd is not None else None


async def rest_of_sse(response: httpx.Response, chunks: Any) -> str:
    """What the SSE response sends until it ends (the iterator is already started)."""
    text = ""
    async for chunk in chunks:
        text += chunk
    return text


async def test_a_subscription_and_an_sse_stream_end_inside_the_drain_budget() -> None:
    process = HeraldProcess(
        {**base_env(), "SHUTDOWN_GRACE_SECONDS": str(GRACE), "STREAM_HEARTBEAT_SECONDS": "0.3"}
    )
    process.start()
    try:
        key = await new_key("drain-live")
        subscribed = scheduled_an_hour_ahead(process, key)
        streamed = scheduled_an_hour_ahead(process, key)
        ws = await open_subscription(process, key, subscribed)
        async with (
            httpx.AsyncClient(base_url=process.url, timeout=10) as client,
            client.stream(
                "GET",
                f"/v1/notifications/{streamed}/events",
                headers={"Accept": "text/event-stream", **auth(key)},
            ) as response,
        ):
            assert response.status_code == 200
            chunks = response.aiter_text()
            opened = ""
            async with asyncio.timeout(10):  # live: the snapshot has arrived
                while "event: status" not in opened:
                    opened += await anext(chunks)
            started = time.monotonic()
            process.signal(signal.SIGTERM)
            async with asyncio.timeout(GRACE + 3):
                (messages, code), tail = await asyncio.gather(
                    messages_until_closed(ws), rest_of_sse(response, chunks)
                )
            ended = time.monotonic() - started
        assert code in (1000, 1001, 1012), (code, messages)
        assert all(m["type"] != "error" for m in messages), messages
        assert "event: status" not in tail  # nothing new: the stream just ended
        assert ended < GRACE + 3, ended
        # uvicorn re-raises the captured SIGTERM once it has shut down cleanly.
        assert process.wait(timeout=GRACE + 5) in (0, -signal.SIGTERM)
        assert time.monotonic() - started < GRACE + 5
    finally:
        process.stop()
