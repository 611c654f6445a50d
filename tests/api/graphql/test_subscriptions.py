"""GraphQL subscriptions over graphql-transport-ws, against a real `herald serve`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from tests.notifications.conftest import auth, new_key
from tests.support.process import HeraldProcess

pytestmark = pytest.mark.process

EMAIL = {"channel": "email", "to": "jane@example.com", "subject": "Hi", "body": "Hello"}
WATCH = """subscription Watch($id: ID) {
  notificationEvents(id: $id) { notificationId status attempt sequence createdAt }
}"""
WATCH_ALL = """subscription { notificationEvents { notificationId status sequence } }"""


def ws_url(server: HeraldProcess) -> str:
    return server.url.replace("http://", "ws://") + "/graphql"


def send(server: HeraldProcess, key: str, **overrides: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{server.url}/v1/notifications", json={**EMAIL, **overrides}, headers=auth(key)
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_subscription_sees_queued_sending_sent_in_order(server: HeraldProcess) -> None:
    key = await new_key("watcher")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    later = send(server, key, send_at=tomorrow)  # stays scheduled: a snapshot
    transport = WebsocketsTransport(
        url=ws_url(server), init_payload={"Authorization": f"Bearer {key}"}
    )
    async with Client(transport=transport) as session:
        snapshot = session.subscribe(GraphQLRequest(WATCH, variable_values={"id": later["id"]}))
        first = await asyncio.wait_for(anext(snapshot), 10)
        assert first["notificationEvents"]["status"] == "SCHEDULED"
        await snapshot.aclose()

        created = send(server, key)
        seen: list[dict[str, Any]] = []
        request = GraphQLRequest(WATCH, variable_values={"id": created["id"]})
        async with asyncio.timeout(15):
            async for result in session.subscribe(request):
                seen.append(result["notificationEvents"])
    assert [e["status"] for e in seen] == ["QUEUED", "SENDING", "SENT"]
    assert [e["sequence"] for e in seen] == [1, 2, 3]
    assert {e["notificationId"] for e in seen} == {created["id"]}


async def test_a_subscriber_sees_only_its_own_notifications(server: HeraldProcess) -> None:
    mine, theirs = await new_key("mine"), await new_key("theirs")
    transport = WebsocketsTransport(
        url=ws_url(server), init_payload={"Authorization": f"Bearer {mine}"}
    )
    async with Client(transport=transport) as session:
        stream = session.subscribe(GraphQLRequest(WATCH_ALL))
        first = asyncio.ensure_future(anext(stream))
        # Wait until the subscription is live: the server answers a ping only after it.
        await asyncio.sleep(0)
        other = send(server, theirs)
        own: dict[str, Any] | None = None
        deadline = asyncio.get_running_loop().time() + 15
        while own is None:
            created = send(server, mine)
            try:
                result = await asyncio.wait_for(asyncio.shield(first), 1)
            except TimeoutError:
                assert asyncio.get_running_loop().time() < deadline
                continue
            own = created
        assert result["notificationEvents"]["notificationId"] != other["id"]
        events = [result["notificationEvents"]]
        async with asyncio.timeout(10):
            while len([e for e in events if e["status"] == "SENT"]) < 1:
                events.append((await anext(stream))["notificationEvents"])
        await stream.aclose()
    assert other["id"] not in {e["notificationId"] for e in events}
    # Another key's notification by id: not found, as over HTTP.
    transport = WebsocketsTransport(
        url=ws_url(server), init_payload={"Authorization": f"Bearer {mine}"}
    )
    async with Client(transport=transport) as session:
        with pytest.raises(Exception, match="no notification"):
            async for _ in session.subscribe(
                GraphQLRequest(WATCH, variable_values={"id": other["id"]})
            ):
                pass


@pytest.mark.parametrize("payload", [{}, {"Authorization": "Bearer hk_unknown"}])
async def test_a_bad_key_closes_the_connection_with_4403(
    server: HeraldProcess, payload: dict[str, str]
) -> None:
    async with websockets.connect(ws_url(server), subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403


async def test_the_legacy_graphql_ws_protocol_is_refused(server: HeraldProcess) -> None:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with websockets.connect(ws_url(server), subprotocols=["graphql-ws"]) as ws:  # type: ignore[list-item]
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4406


NODE_CLIENT = Path(__file__).with_name("graphql_ws_client.mjs")


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node")
async def test_the_graphql_ws_reference_client_follows_a_delivery(
    server: HeraldProcess, tmp_path: Path
) -> None:
    modules = Path(__file__).parents[3] / "tests" / "support" / "node" / "node_modules"
    if not (modules / "graphql-ws").exists() and shutil.which("npm") is not None:
        # The locked client (tests/support/node/package-lock.json), installed once.
        await asyncio.to_thread(
            subprocess.run,
            ["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(modules.parent)],
            capture_output=True,
            timeout=180,
            check=False,
        )
    if not (modules / "graphql-ws").exists():
        pytest.skip("could not install graphql-ws (npm ci --prefix tests/support/node)")
    key = await new_key("node")
    created = send(server, key, send_at=None)
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "NODE_PATH": str(modules)}
    result = await asyncio.to_thread(
        subprocess.run,
        ["node", str(NODE_CLIENT), ws_url(server), key, created["id"]],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    statuses = [json.loads(line)["status"] for line in result.stdout.splitlines()]
    assert statuses == ["QUEUED", "SENDING", "SENT"], statuses


async def test_a_message_nested_too_deep_closes_the_socket_unread(server: HeraldProcess) -> None:
    key = await new_key("deep-ws")
    async with websockets.connect(ws_url(server), subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"apiKey": key}}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
        deep = '{"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }", '
        deep += '"variables": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}}"
        await ws.send(deep)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4400


WATCH_FILTERED = """subscription Filtered($filter: NotificationFilter) {
  notificationEvents(filter: $filter) { notificationId status sequence }
}"""
FINISHED = {"sent", "delivered", "failed", "cancelled"}


async def collect(session: Any, request: GraphQLRequest, into: list[dict[str, Any]]) -> None:
    async for result in session.subscribe(request):
        into.append(result["notificationEvents"])


async def until(condition: Any, timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def send_sms(server: HeraldProcess, key: str, **extra: Any) -> dict[str, Any]:
    sms = {"channel": "sms", "to": "+15550100", "body": "Hello", **extra}
    response = httpx.post(f"{server.url}/v1/notifications", json=sms, headers=auth(key))
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def finished(server: HeraldProcess, key: str, notification_id: str) -> bool:
    response = httpx.get(f"{server.url}/v1/notifications/{notification_id}", headers=auth(key))
    return response.status_code == 200 and response.json()["status"] in FINISHED


async def test_a_filtered_subscription_sees_only_matching_events_of_its_own_key(
    server: HeraldProcess,
) -> None:
    mine, theirs = await new_key("filter-mine"), await new_key("filter-theirs")
    reference = f"order-{uuid.uuid4()}"
    by_reference: list[dict[str, Any]] = []  # channel EMAIL and the reference
    by_status: list[dict[str, Any]] = []  # status SENT only
    transport = WebsocketsTransport(
        url=ws_url(server), init_payload={"Authorization": f"Bearer {mine}"}
    )
    async with Client(transport=transport) as session:
        filters = [
            ({"channel": "EMAIL", "reference": reference}, by_reference),
            ({"status": "SENT"}, by_status),
        ]
        tasks = [
            asyncio.create_task(
                collect(
                    session, GraphQLRequest(WATCH_FILTERED, variable_values={"filter": f}), into
                )
            )
            for f, into in filters
        ]
        try:
            # Live once a matching notification shows up on both (there is no "subscribed" ack).
            matching: set[str] = set()
            async with asyncio.timeout(15):
                while not (by_reference and by_status):
                    matching.add(send(server, mine, reference=reference)["id"])
                    with contextlib.suppress(TimeoutError):
                        await until(lambda: bool(by_reference and by_status), timeout=1)
            await until(lambda: all(finished(server, mine, n) for n in matching))
            # What neither subscription may see: another reference, another channel, another
            # key (with the same reference), and a notification that never reaches SENT.
            others = [
                (mine, send(server, mine, reference="someone-else")),
                (mine, send_sms(server, mine, reference=reference)),
                (theirs, send(server, theirs, reference=reference)),
            ]
            tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
            scheduled = send_sms(server, mine, send_at=tomorrow)
            await until(lambda: all(finished(server, key, n["id"]) for key, n in others))
            # Events on one owner's feed arrive in order: once the marker is SENT on both,
            # anything that leaked from the others would have arrived already.
            marker = send(server, mine, reference=reference)["id"]
            matching.add(marker)
            await until(
                lambda: (
                    {"notificationId": marker, "status": "SENT"}
                    in [{k: e[k] for k in ("notificationId", "status")} for e in by_status]
                    and any(
                        e["notificationId"] == marker and e["status"] == "SENT"
                        for e in by_reference
                    )
                )
            )
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    assert {e["notificationId"] for e in by_reference} <= matching, by_reference
    assert [e["status"] for e in by_reference if e["notificationId"] == marker] == [
        "QUEUED",
        "SENDING",
        "SENT",
    ]
    assert {e["status"] for e in by_status} == {"SENT"}, by_status
    # SENT of any of my notifications (whatever the channel or reference), never theirs.
    # (A probe sent before the subscription was live may be missing: hence at least / at most.)
    mine_sent = {n["id"] for key, n in others if key == mine} | {marker}
    seen_sent = {e["notificationId"] for e in by_status}
    assert mine_sent <= seen_sent <= mine_sent | matching, by_status
    # Nothing from the other reference, the other channel, the other key or the scheduled one.
    unwanted = {n["id"] for _, n in others} | {scheduled["id"]}
    assert unwanted.isdisjoint(e["notificationId"] for e in by_reference), by_reference
    assert scheduled["id"] not in {e["notificationId"] for e in by_status}
