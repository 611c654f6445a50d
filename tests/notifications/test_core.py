"""The core under every interface: use cases, idempotency across interfaces, the event feed."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from herald.auth.keys import Principal
from herald.errors import Forbidden, NotFound, ValidationFailed
from herald.notifications.events import StatusEvent, subscribe
from herald.notifications.model import NotificationInput
from herald.notifications.use_cases import NotificationUseCases
from tests.conftest import REDIS_URL, make_settings, running_app
from tests.dashboard.conftest import BASE, dashboard_settings, session_csrf, sign_in
from tests.notifications.conftest import auth, new_key, wait_status
from tests.support.standin import TwilioStandIn, accept

ROOT = Path(__file__).resolve().parents[2]
SMS = {"channel": "sms", "to": "+447911123456", "body": "hello"}


def use_cases_of(app: Any) -> NotificationUseCases:
    return app.state.resources.use_cases  # type: ignore[no-any-return]


async def principal_of(key: str, app: Any) -> Principal:
    return await app.state.resources.authenticator.authenticate(f"Bearer {key}")  # type: ignore[no-any-return]


async def test_one_idempotency_key_over_the_use_case_and_rest_is_one_request(
    api_key: str,
) -> None:
    async with running_app(make_settings(enable_workers=False)) as (app, client):
        principal = await principal_of(api_key, app)
        direct = await use_cases_of(app).send_notification(
            principal, NotificationInput(**SMS), idempotency_key="order-7"
        )
        assert not direct.replayed
        over_rest = await client.post(
            "/v1/notifications", json=SMS, headers={**auth(api_key), "Idempotency-Key": "order-7"}
        )
        assert over_rest.status_code == 202, over_rest.text
        assert over_rest.headers["idempotent-replayed"] == "true"
        assert over_rest.json()["id"] == str(direct.notifications[0].id)

        # and the other way round, for a batch
        first = await client.post(
            "/v1/notifications/batch",
            json={"notifications": [SMS, {**SMS, "body": "two"}]},
            headers={**auth(api_key), "Idempotency-Key": "batch-7"},
        )
        again = await use_cases_of(app).send_notifications(
            principal,
            [NotificationInput(**SMS), NotificationInput(**{**SMS, "body": "two"})],
            idempotency_key="batch-7",
        )
        assert again.replayed
        assert [str(n.id) for n in again.notifications] == [
            n["id"] for n in first.json()["notifications"]
        ]
        with pytest.raises(ValidationFailed):  # same key, another input
            await use_cases_of(app).send_notification(
                principal, NotificationInput(**{**SMS, "body": "other"}), idempotency_key="order-7"
            )
        listed = await client.get("/v1/notifications", headers=auth(api_key))
        assert len(listed.json()["items"]) == 3


async def test_use_cases_scope_every_operation_to_its_principal(api_key: str) -> None:
    async with running_app(make_settings(enable_workers=False)) as (app, _client):
        owner = await principal_of(api_key, app)
        other = await principal_of(await new_key("someone-else"), app)
        uc = use_cases_of(app)
        created = (await uc.send_notification(owner, NotificationInput(**SMS))).notifications[0]
        with pytest.raises(NotFound):
            await uc.get_notification(other, created.id)
        with pytest.raises(NotFound):
            await uc.cancel_notification(other, created.id)
        with pytest.raises(NotFound):
            await uc.retry_notification(other, created.id)
        with pytest.raises(Forbidden):
            await uc.pause_queue(owner, "sms")
        operator = Principal.for_operator("ops")
        with pytest.raises(Forbidden, match="only an API key can submit"):
            await uc.send_notification(operator, NotificationInput(**SMS))
        # Recipients and templates belong to an API key too: an operator has none of its own.
        with pytest.raises(Forbidden, match="only an API key can change recipients"):
            await app.state.resources.recipients.remove_push_token(operator, "user-1", "t")
        with pytest.raises(Forbidden, match="templates belong to an API key"):
            await app.state.resources.templates.list_templates(operator)
        assert (await uc.get_notification(operator, created.id)).id == created.id


@contextlib.asynccontextmanager
async def feed(owner: str) -> AsyncIterator[list[StatusEvent]]:
    """Every status event of `owner` published while the block runs, as it arrives."""
    received: list[StatusEvent] = []
    client = aioredis.Redis.from_url(REDIS_URL)
    subscribed = asyncio.Event()  # set by subscribe() once SUBSCRIBE is acknowledged

    async def listen() -> None:
        async for event in subscribe(client, owner, ready=subscribed):
            received.append(event)

    task = asyncio.create_task(listen())
    await asyncio.wait_for(subscribed.wait(), timeout=10)
    try:
        yield received
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.aclose()


def statuses(events: list[StatusEvent], notification_id: str) -> list[tuple[str, int]]:
    return [(e.status, e.sequence) for e in events if e.notification_id == notification_id]


async def until(events: list[StatusEvent], notification_id: str, *wanted: str) -> None:
    deadline = asyncio.get_running_loop().time() + 15
    while [s for s, _ in statuses(events, notification_id)] != list(wanted):
        assert asyncio.get_running_loop().time() < deadline, statuses(events, notification_id)
        await asyncio.sleep(0.02)


async def test_the_feed_carries_every_transition_in_sequence(api_key: str) -> None:
    def respond(token: str, n: int) -> tuple[int, dict[str, Any], dict[str, str]]:
        if token.startswith("fail"):
            return 400, {"code": 21211, "message": "invalid To"}, {}
        return (503, {"message": "busy"}, {}) if n == 1 else accept(token, n)

    standin = TwilioStandIn(respond=respond).start()
    settings = dashboard_settings(**standin.settings(), retry_base_seconds=0.05)
    try:
        async with running_app(settings) as (app, client):
            principal = await principal_of(api_key, app)
            async with feed(str(principal.id)) as events:
                # REST, with one transient failure: queued, sending, retrying, sending, sent
                sent = await client.post("/v1/notifications", json=SMS, headers=auth(api_key))
                sent_id = sent.json()["id"]
                await until(events, sent_id, "queued", "sending", "retrying", "sending", "sent")
                assert statuses(events, sent_id) == [
                    ("queued", 1),
                    ("sending", 2),
                    ("retrying", 3),
                    ("sending", 4),
                    ("sent", 5),
                ]
                read = await wait_status(client, api_key, sent_id)
                assert [e["sequence"] for e in read["events"]] == [1, 2, 3, 4, 5]

                # cancelled through REST
                later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
                scheduled = await client.post(
                    "/v1/notifications", json={**SMS, "send_at": later}, headers=auth(api_key)
                )
                scheduled_id = scheduled.json()["id"]
                await client.post(f"/v1/notifications/{scheduled_id}/cancel", headers=auth(api_key))
                await until(events, scheduled_id, "scheduled", "cancelled")

                # failed for good, then retried from the dashboard (it fails again)
                failing = await client.post(
                    "/v1/notifications",
                    json={**SMS, "reference": "x"},
                    headers=auth(api_key),
                )
                failed_id = failing.json()["id"]
                standin.respond = lambda token, n: (
                    respond("fail", n) if token == failed_id else respond(token, n)
                )
                await until(events, failed_id, "queued", "sending", "failed")
                assert (await sign_in(client)).status_code == 303
                retried = await client.post(
                    f"{BASE}/notifications/{failed_id}/retry",
                    data={"csrf_token": await session_csrf(client)},
                )
                assert retried.status_code == 303, retried.text
                await until(
                    events, failed_id, "queued", "sending", "failed", "queued", "sending", "failed"
                )
                dashboard_event = [e for e in events if e.notification_id == failed_id][3]
                assert dashboard_event.detail == "retried from the dashboard by admin"
                assert all(e.owner == str(principal.id) for e in events)
    finally:
        standin.stop()


async def test_a_subscriber_only_sees_its_own_notifications(api_key: str) -> None:
    other_key = await new_key("other-feed")
    async with running_app(make_settings(enable_workers=False)) as (app, client):
        mine = await principal_of(api_key, app)
        async with feed(str(mine.id)) as events:
            theirs = await client.post("/v1/notifications", json=SMS, headers=auth(other_key))
            ours = await client.post("/v1/notifications", json=SMS, headers=auth(api_key))
            await until(events, ours.json()["id"], "queued")
            assert statuses(events, theirs.json()["id"]) == []


def test_status_changes_are_written_in_one_module_only() -> None:
    # Every UPDATE of notifications' status lives in herald.notifications.transitions.
    found = subprocess.run(
        [
            "grep",
            "-rlE",
            "--exclude-dir=migrations",
            r"UPDATE notifications|update\((Notification|_NOTIFICATIONS)\b",
            "src",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    assert found == ["src/herald/notifications/transitions.py"]


def test_the_vocabulary_is_stated_once() -> None:
    # Channels, statuses and priorities are spelled out in herald.vocabulary and nowhere else
    # (migrations are history: they keep the values they were written with; the generated gRPC
    # stubs repeat the contract, whose template content has one field per channel).
    found = subprocess.run(
        [
            "grep",
            "-rlE",
            "--exclude-dir=migrations",
            "--exclude=*_pb2.pyi",
            "--exclude=vocabulary.py",
            r"""["']email["'], ["']sms["']|["']queued["'], ["']sending["']|["']high["'], ["']normal""",
            "src",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    assert found == []
