"""SSE at /v1/notifications/{id}/events, read with `httpx-sse`."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from tests.notifications.conftest import auth, new_key
from tests.support.process import HeraldProcess

pytestmark = pytest.mark.process

EMAIL = {"channel": "email", "to": "jane@example.com", "subject": "Hi", "body": "Hello"}
SSE = {"Accept": "text/event-stream"}


async def send(client: httpx.AsyncClient, key: str, **extra: Any) -> dict[str, Any]:
    response = await client.post("/v1/notifications", json={**EMAIL, **extra}, headers=auth(key))
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def read_events(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], limit: float = 15
) -> tuple[list[dict[str, Any]], list[str]]:
    """The status events until the server ends the stream, and the ids it sent."""
    events: list[dict[str, Any]] = []
    ids: list[str] = []
    deadline = time.monotonic() + limit
    async with aconnect_sse(client, "GET", url, headers=headers, timeout=limit) as source:
        assert source.response.status_code == 200
        async for sse in source.aiter_sse():
            assert time.monotonic() < deadline, (events, ids)
            if sse.event == "status":
                events.append(sse.json())
                ids.append(sse.id)
    return events, ids


async def test_every_status_in_order_then_the_stream_ends(server: HeraldProcess) -> None:
    key = await new_key("sse")
    async with httpx.AsyncClient(base_url=server.url) as client:
        created = await send(client, key)
        events, ids = await read_events(
            client, f"/v1/notifications/{created['id']}/events", {**SSE, **auth(key)}
        )
        assert [e["status"] for e in events] == ["queued", "sending", "sent"]
        assert ids == ["1", "2", "3"]
        # Resuming after event 1: the rest, read from the events table.
        resumed, ids = await read_events(
            client,
            f"/v1/notifications/{created['id']}/events",
            {**SSE, **auth(key), "Last-Event-ID": "1"},
        )
        assert ids == ["2", "3"]
        assert [e["status"] for e in resumed] == ["sending", "sent"]


async def test_heartbeats_a_token_and_the_refusals(server: HeraldProcess) -> None:
    key, other = await new_key("sse-a"), await new_key("sse-b")
    async with httpx.AsyncClient(base_url=server.url) as client:
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        waiting = await send(client, key, send_at=tomorrow)
        token = (await client.post("/v1/stream-tokens", headers=auth(key))).json()["token"]
        url = f"/v1/notifications/{waiting['id']}/events"
        async with client.stream("GET", f"{url}?token={token}", headers=SSE) as response:
            assert response.status_code == 200
            text = ""
            async for chunk in response.aiter_text():
                text += chunk
                if ": heartbeat" in text:
                    break
        assert "event: status" in text
        assert (await client.get(url, headers={**SSE, **auth(other)})).status_code == 404
        assert (await client.get(url, headers=SSE)).status_code == 401
        assert (await client.get(f"{url}?token={token}", headers=SSE)).status_code == 401
        assert (await client.get(url, headers=auth(key))).status_code == 406
