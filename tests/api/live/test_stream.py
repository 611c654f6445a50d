"""The WebSocket stream and stream tokens, against a real `herald serve`, with `websockets`."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import pytest
import websockets

from herald.api.live.watch import Dropped, Watch
from herald.notifications.events import StatusEvent, channel_of
from tests.conftest import base_env, make_settings, running_app
from tests.notifications.conftest import auth, new_key
from tests.support.process import HeraldProcess

pytestmark = pytest.mark.process

EMAIL = {"channel": "email", "to": "jane@example.com", "subject": "Hi", "body": "Hello"}


def stream_url(server: HeraldProcess, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return (
        server.url.replace("http://", "ws://")
        + "/v1/notifications/stream"
        + (f"?{query}" if query else "")
    )


def send(server: HeraldProcess, key: str) -> dict[str, Any]:
    response = httpx.post(f"{server.url}/v1/notifications", json=EMAIL, headers=auth(key))
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def receive_until(ws: Any, done: Any, timeout: float = 15) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while not done(messages):
            messages.append(json.loads(await ws.recv()))
    return messages


async def drain_messages(ws: Any) -> None:
    while True:
        await ws.recv()


def sent(notification_id: str) -> Any:
    return lambda ms: any(
        m["type"] == "event" and m["notification_id"] == notification_id and m["status"] == "sent"
        for m in ms
    )


async def test_snapshot_then_events_in_order_with_sequences(server: HeraldProcess) -> None:
    key = await new_key("stream")
    created = send(server, key)
    async with websockets.connect(
        stream_url(server, ids=created["id"]), additional_headers=auth(key)
    ) as ws:

        def done(ms: list[dict[str, Any]]) -> bool:
            return sent(created["id"])(ms) or (ms and ms[0]["notification"]["status"] == "sent")

        messages = await receive_until(ws, done)
    assert messages[0]["type"] == "snapshot"
    snapshot = messages[0]["notification"]
    assert snapshot["id"] == created["id"]
    events = [m for m in messages if m["type"] == "event"]
    sequences = [e["sequence"] for e in events]
    # The snapshot's events and the live ones together: every status once, in order.
    seen = [e["sequence"] for e in snapshot["events"]] + sequences
    assert seen == list(range(1, 4))
    statuses = [e["status"] for e in snapshot["events"]] + [e["status"] for e in events]
    assert statuses == ["queued", "sending", "sent"]
    assert all("owner" not in e for e in events)


async def test_all_of_a_keys_notifications_and_only_its_own_with_heartbeats(
    server: HeraldProcess,
) -> None:
    mine, theirs = await new_key("mine"), await new_key("theirs")
    async with websockets.connect(stream_url(server), additional_headers=auth(mine)) as ws:
        # A heartbeat shows the subscription is in place before anything is sent.
        await receive_until(ws, lambda ms: any(m["type"] == "heartbeat" for m in ms))
        other = send(server, theirs)
        created = send(server, mine)
        messages = await receive_until(ws, sent(created["id"]))
    ids = {m.get("notification_id") for m in messages if m["type"] == "event"}
    assert ids == {created["id"]}
    assert other["id"] not in json.dumps(messages)
    metrics = server.get("/metrics").text
    assert 'herald_live_events_sent_total{interface="websocket"}' in metrics


async def test_a_stream_token_opens_one_stream_once(server: HeraldProcess) -> None:
    key = await new_key("browser")
    response = httpx.post(f"{server.url}/v1/stream-tokens", headers=auth(key))
    assert response.status_code == 201, response.text
    token = response.json()["token"]
    assert response.json()["expires_in"] <= 60
    async with websockets.connect(stream_url(server, token=token)) as ws:
        await receive_until(ws, lambda ms: any(m["type"] == "heartbeat" for m in ms))
    for url in (
        stream_url(server, token=token),
        stream_url(server, token="st_nope"),
        stream_url(server),
    ):
        async with websockets.connect(url) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4403
    assert httpx.post(f"{server.url}/v1/stream-tokens").status_code == 401


async def test_another_keys_id_is_not_found_and_never_streamed(server: HeraldProcess) -> None:
    mine, theirs = await new_key("a"), await new_key("b")
    other = send(server, theirs)
    async with websockets.connect(
        stream_url(server, ids=other["id"]), additional_headers=auth(mine)
    ) as ws:
        messages = [json.loads(await asyncio.wait_for(ws.recv(), 10))]
        with pytest.raises(websockets.ConnectionClosedOK):
            messages.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
    assert messages == [{"type": "error", "code": "not_found", "id": other["id"]}]
    assert ws.close_code == 1000  # nothing left to follow


async def test_bad_ids_close_with_4400(server: HeraldProcess) -> None:
    key = await new_key("bad-ids")
    async with websockets.connect(
        stream_url(server, ids="nope"), additional_headers=auth(key)
    ) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4400


async def test_a_slow_consumer_is_told_what_was_dropped() -> None:
    async with running_app(make_settings(enable_workers=False)) as (app, _):
        resources = app.state.resources
        async with Watch(resources, "owner-1", backlog=2) as watch:
            for sequence in range(1, 6):
                event = StatusEvent("n1", "owner-1", "queued", 0, None, sequence, datetime.now(UTC))
                await resources.redis.publish(channel_of("owner-1"), msgspec.json.encode(event))
            deadline = time.monotonic() + 10
            while watch.pending < 5:  # nobody reads: two wait, three are dropped
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            items = [await watch.next(idle=1) for _ in range(3)]
    assert items[0] == Dropped(3)
    assert [i.sequence for i in items[1:] if isinstance(i, StatusEvent)] == [1, 2]


async def test_streams_close_with_1012_when_the_server_drains() -> None:
    process = HeraldProcess({**base_env(), "SHUTDOWN_GRACE_SECONDS": "2"})
    process.start()
    try:
        key = await new_key("drain")
        async with websockets.connect(stream_url(process), additional_headers=auth(key)) as ws:
            await asyncio.sleep(0)
            started = time.monotonic()
            process.signal(signal.SIGTERM)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(drain_messages(ws), 10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code in (1012, 1001)
        assert time.monotonic() - started < 5  # well inside SHUTDOWN_GRACE_SECONDS
        process.wait(timeout=10)
    finally:
        process.stop()
