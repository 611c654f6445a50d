"""The /v1 notification API in-process, against the real Postgres and Redis."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from herald.db.models import Notification
from tests.conftest import DATABASE_URL, make_settings, running_app
from tests.notifications.conftest import auth, new_key, wait_status

EMAIL = {"channel": "email", "to": "jane@example.com", "subject": "Hi", "body": "Hello"}
SMS = {"channel": "sms", "to": "+447911123456", "body": "Your code is 123456"}
PUSH = {
    "channel": "push",
    "to": "f" * 40 + ":APA91b" + "x" * 100,
    "body": "Ping",
    "data": {"k": "v"},
}
WHATSAPP = {
    "channel": "whatsapp",
    "to": "+447911123456",
    "template": {"name": "order_update", "language": "en_US", "parameters": ["42"]},
}


@pytest.fixture
async def client() -> Any:
    async with running_app(make_settings(retry_base_seconds=0.05)) as (_, client):
        yield client


async def count_rows() -> int:
    engine = create_async_engine(DATABASE_URL)
    try:
        async with engine.connect() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(Notification))).scalar_one()
            )
    finally:
        await engine.dispose()


async def test_requests_without_a_valid_key_are_401(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer hk_unknown"}, {"Authorization": "Basic x"}):
        response = await client.get("/v1/notifications", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_revoked_key_is_401(client: httpx.AsyncClient) -> None:
    from herald.auth.keys import revoke_key
    from herald.db.engine import create_session_maker

    key = await new_key("to-revoke")
    engine = create_async_engine(DATABASE_URL)
    async with create_session_maker(engine)() as session, session.begin():
        await revoke_key(session, "to-revoke")
    await engine.dispose()
    assert (await client.get("/v1/notifications", headers=auth(key))).status_code == 401


@pytest.mark.parametrize("payload", [EMAIL, SMS, PUSH, WHATSAPP], ids=lambda p: p["channel"])
async def test_each_channel_is_accepted_and_delivered_by_the_log_provider(
    client: httpx.AsyncClient, api_key: str, payload: dict[str, Any]
) -> None:
    response = await client.post("/v1/notifications", json=payload, headers=auth(api_key))
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["status"] == "queued"
    assert created["events"][0]["status"] == "queued"
    done = await wait_status(client, api_key, created["id"])
    assert done["attempts"] == 1
    assert done["provider"] == "log"
    assert done["provider_message_id"]
    assert [e["status"] for e in done["events"]] == ["queued", "sending", "sent"]


@pytest.mark.parametrize("payload", [EMAIL, SMS, PUSH, WHATSAPP], ids=lambda p: p["channel"])
async def test_every_field_sent_is_stored_and_read_back(
    client: httpx.AsyncClient, api_key: str, payload: dict[str, Any]
) -> None:
    send_at = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    sent = {
        **payload,
        "priority": "high",
        "reference": "order-42",
        "metadata": {"order": 42, "tags": ["a", "b"], "nested": {"é": None}},
        "send_at": send_at.isoformat(),
    }
    response = await client.post("/v1/notifications", json=sent, headers=auth(api_key))
    assert response.status_code == 202, response.text
    created = response.json()
    read = (await client.get(f"/v1/notifications/{created['id']}", headers=auth(api_key))).json()
    listed = (await client.get("/v1/notifications", headers=auth(api_key))).json()["items"]
    assert [item["id"] for item in listed] == [created["id"]]
    for view in (created, read, listed[0]):
        for field, value in sent.items():
            if field == "send_at":
                assert datetime.fromisoformat(view["send_at"]) == send_at
            else:
                assert view[field] == value, field
    assert read["events"] == created["events"]


async def test_another_keys_notification_is_404(client: httpx.AsyncClient, api_key: str) -> None:
    created = (await client.post("/v1/notifications", json=EMAIL, headers=auth(api_key))).json()
    other = await new_key("other")
    response = await client.get(f"/v1/notifications/{created['id']}", headers=auth(other))
    assert response.status_code == 404
    cancel = await client.post(f"/v1/notifications/{created['id']}/cancel", headers=auth(other))
    assert cancel.status_code == 404


BAD_ITEMS = [
    ({**EMAIL, "to": "not-an-address"}, 422, "to", "not a valid email address"),
    ({**SMS, "to": "07911123456"}, 422, "to", "not an E.164 phone number"),
    ({**PUSH, "to": "short token"}, 422, "to", "not an FCM registration token"),
    ({k: v for k, v in EMAIL.items() if k != "subject"}, 422, "subject", "required for email"),
    ({**EMAIL, "subject": "Hi\r\nBcc: x@example.com"}, 422, "subject", "CR or LF"),
    ({**SMS, "body": "x" * 1601}, 422, "body", "sms allows 1600"),
    ({**SMS, "channel": "fax"}, 422, "channel", "not a channel"),
    ({**SMS, "priority": "urgent"}, 422, "priority", "not a priority"),
    ({**SMS, "send_at": "2030-01-01T09:00:00"}, 422, "send_at", "UTC offset"),
    ({**SMS, "reference": "r" * 256}, 422, "reference", "longer than 255"),
    ({**WHATSAPP, "body": "both"}, 422, "body", "exactly one of body and template"),
    ({**SMS, "colour": "red"}, 400, "colour", "not a known field"),
    ({**SMS, "to": 447911123456}, 400, "to", "Expected `str`"),
    ({**SMS, "send_at": "tomorrow"}, 400, "send_at", "datetime"),
]


@pytest.mark.parametrize(("payload", "status", "field", "message"), BAD_ITEMS)
async def test_bad_input_is_a_problem_naming_the_field(
    client: httpx.AsyncClient,
    api_key: str,
    payload: dict[str, Any],
    status: int,
    field: str,
    message: str,
) -> None:
    response = await client.post("/v1/notifications", json=payload, headers=auth(api_key))
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    assert any(e["field"] == field and message in e["message"] for e in problem["errors"]), problem
    assert await count_rows() == 0


@pytest.mark.parametrize(
    ("content", "headers", "status", "detail"),
    [
        (b'{"channel": "sms"', {"content-type": "application/json"}, 400, "not valid JSON"),
        (
            b"channel=sms",
            {"content-type": "application/x-www-form-urlencoded"},
            415,
            "application/json",
        ),
        (b'{"channel": "sms"}', {}, 415, "application/json"),
        (
            b'{"to": "' + b"a" * (1024 * 1024) + b'"}',
            {"content-type": "application/json"},
            413,
            "1 MiB",
        ),
    ],
    ids=["malformed-json", "form", "no-content-type", "too-large"],
)
async def test_malformed_requests_are_problems_not_500s(
    client: httpx.AsyncClient,
    api_key: str,
    content: bytes,
    headers: dict[str, str],
    status: int,
    detail: str,
) -> None:
    response = await client.post(
        "/v1/notifications", content=content, headers={**auth(api_key), **headers}
    )
    assert response.status_code == status, response.text
    assert detail in response.json()["detail"]


async def test_batch_is_all_or_nothing_and_names_every_bad_item(
    client: httpx.AsyncClient, api_key: str
) -> None:
    items = [SMS, {**SMS, "to": "123"}, EMAIL, {**EMAIL, "subject": None}]
    response = await client.post(
        "/v1/notifications/batch", json={"notifications": items}, headers=auth(api_key)
    )
    assert response.status_code == 422
    fields = {(e["index"], e["field"]) for e in response.json()["errors"]}
    assert fields == {(1, "notifications[1].to"), (3, "notifications[3].subject")}
    assert await count_rows() == 0


async def test_batch_over_1000_is_refused(client: httpx.AsyncClient, api_key: str) -> None:
    response = await client.post(
        "/v1/notifications/batch", json={"notifications": [SMS] * 1001}, headers=auth(api_key)
    )
    assert response.status_code == 422
    assert "limit is 1000" in response.json()["detail"]


async def test_batch_creates_all_in_order_and_delivers_them(
    client: httpx.AsyncClient, api_key: str
) -> None:
    items = [{**SMS, "reference": f"ref-{i}"} for i in range(25)]
    response = await client.post(
        "/v1/notifications/batch", json={"notifications": items}, headers=auth(api_key)
    )
    assert response.status_code == 202
    created = response.json()["notifications"]
    assert [n["reference"] for n in created] == [f"ref-{i}" for i in range(25)]
    for notification in created:
        await wait_status(client, api_key, notification["id"])


async def test_list_filters_and_paginates_stably_under_inserts(
    client: httpx.AsyncClient, api_key: str
) -> None:
    first = [
        (
            await client.post(
                "/v1/notifications", json={**SMS, "reference": f"r{i}"}, headers=auth(api_key)
            )
        ).json()["id"]
        for i in range(5)
    ]
    page = (await client.get("/v1/notifications?limit=2", headers=auth(api_key))).json()
    seen = [n["id"] for n in page["items"]]
    # new notifications arrive while the client pages through
    for i in range(3):
        await client.post(
            "/v1/notifications", json={**EMAIL, "reference": f"new{i}"}, headers=auth(api_key)
        )
    while page["next_cursor"]:
        page = (
            await client.get(
                f"/v1/notifications?limit=2&cursor={page['next_cursor']}", headers=auth(api_key)
            )
        ).json()
        seen += [n["id"] for n in page["items"]]
    assert seen == first[::-1]

    by_channel = (await client.get("/v1/notifications?channel=email", headers=auth(api_key))).json()
    assert len(by_channel["items"]) == 3
    assert {n["channel"] for n in by_channel["items"]} == {"email"}
    by_ref = (await client.get("/v1/notifications?reference=r3", headers=auth(api_key))).json()
    assert [n["id"] for n in by_ref["items"]] == [first[3]]
    await wait_status(client, api_key, first[0])
    sent = (
        await client.get("/v1/notifications?status=sent&limit=200", headers=auth(api_key))
    ).json()
    assert first[0] in {n["id"] for n in sent["items"]}
    assert all(n["status"] == "sent" for n in sent["items"])
    for query in ("limit=0", "limit=201", "status=lost", "cursor=%%%"):
        response = await client.get(f"/v1/notifications?{query}", headers=auth(api_key))
        assert response.status_code == 400, query


async def test_scheduled_notifications_wait_for_send_at_and_can_be_cancelled(
    client: httpx.AsyncClient, api_key: str
) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    a = (
        await client.post("/v1/notifications", json={**SMS, "send_at": soon}, headers=auth(api_key))
    ).json()
    b = (
        await client.post(
            "/v1/notifications", json={**SMS, "send_at": later}, headers=auth(api_key)
        )
    ).json()
    assert a["status"] == b["status"] == "scheduled"
    await asyncio.sleep(0.5)
    assert (await client.get(f"/v1/notifications/{a['id']}", headers=auth(api_key))).json()[
        "status"
    ] == "scheduled"
    sent = await wait_status(client, api_key, a["id"])
    assert datetime.fromisoformat(sent["sent_at"]) >= datetime.fromisoformat(soon)

    cancelled = await client.post(f"/v1/notifications/{b['id']}/cancel", headers=auth(api_key))
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["events"][-1]["status"] == "cancelled"
    again = await client.post(f"/v1/notifications/{b['id']}/cancel", headers=auth(api_key))
    assert again.status_code == 409
    too_late = await client.post(f"/v1/notifications/{a['id']}/cancel", headers=auth(api_key))
    assert too_late.status_code == 409
    assert "sent" in too_late.json()["detail"]


async def test_idempotency_key_replays_the_first_response(
    client: httpx.AsyncClient, api_key: str
) -> None:
    headers = {**auth(api_key), "Idempotency-Key": "order-42"}
    first = await client.post("/v1/notifications", json=SMS, headers=headers)
    second = await client.post("/v1/notifications", json=SMS, headers=headers)
    assert first.status_code == second.status_code == 202
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
    assert await count_rows() == 1
    different = await client.post(
        "/v1/notifications", json={**SMS, "body": "other"}, headers=headers
    )
    assert different.status_code == 422
    # scoped to the API key: another key may use the same Idempotency-Key
    other = await new_key("other")
    third = await client.post(
        "/v1/notifications", json=SMS, headers={**auth(other), "Idempotency-Key": "order-42"}
    )
    assert third.status_code == 202
    assert third.json()["id"] != first.json()["id"]
    batch_headers = {**auth(api_key), "Idempotency-Key": "batch-1"}
    b1 = await client.post(
        "/v1/notifications/batch", json={"notifications": [SMS, EMAIL]}, headers=batch_headers
    )
    b2 = await client.post(
        "/v1/notifications/batch", json={"notifications": [SMS, EMAIL]}, headers=batch_headers
    )
    assert [n["id"] for n in b1.json()["notifications"]] == [
        n["id"] for n in b2.json()["notifications"]
    ]


async def test_the_openapi_schema_documents_every_endpoint(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    assert set(paths) >= {
        "/v1/notifications",
        "/v1/notifications/batch",
        "/v1/notifications/{notification_id}",
        "/v1/notifications/{notification_id}/cancel",
    }
    post = paths["/v1/notifications"]["post"]
    assert "requestBody" in post
    assert {"202", "400", "401", "422", "503"} <= set(post["responses"])


async def test_nul_characters_are_refused_not_a_500(
    client: httpx.AsyncClient, api_key: str
) -> None:
    # Postgres cannot store U+0000 in text or JSONB; found by the Hypothesis test.
    for payload, field in (
        ({**SMS, "body": "a\x00b"}, "body"),
        ({**EMAIL, "subject": "\x00"}, "subject"),
        ({**SMS, "metadata": {"k\x00": "v"}}, "metadata"),
        (
            {**WHATSAPP, "template": {"name": "t", "language": "en", "parameters": ["\x00"]}},
            "template",
        ),
    ):
        response = await client.post("/v1/notifications", json=payload, headers=auth(api_key))
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == field
    listed = await client.get("/v1/notifications?reference=%00", headers=auth(api_key))
    assert listed.status_code == 400
    assert await count_rows() == 0
