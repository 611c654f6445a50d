"""/v1/recipients over REST, in-process, against the real Postgres and Redis."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import DATABASE_URL, make_settings, running_app
from tests.notifications.conftest import auth, new_key, wait_status
from tests.support.process import HeraldProcess

TOKEN = "f" * 40 + ":APA91b" + "x" * 100
OTHER_TOKEN = "e" * 40 + ":APA91b" + "y" * 100
JANE = {
    "email": "jane@example.com",
    "phone": "+447700900123",
    "whatsapp": "+447700900124",
    "locale": "de",
    "timezone": "Europe/Berlin",
    "data": {"name": "Jane", "plan": {"tier": "pro"}},
}


@pytest.fixture
async def client() -> Any:
    async with running_app(make_settings(retry_base_seconds=0.05)) as (_, client):
        yield client


async def query(sql: str, **params: Any) -> list[Any]:
    engine = create_async_engine(DATABASE_URL)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(sql), params)
            return list(result) if result.returns_rows else []
    finally:
        await engine.dispose()


async def test_put_creates_then_replaces_and_get_reads_it(client: httpx.AsyncClient) -> None:
    key = await new_key("a")
    created = await client.put("/v1/recipients/user-42", json=JANE, headers=auth(key))
    assert created.status_code == 201, created.text
    body = created.json()
    assert {k: body[k] for k in JANE} == JANE
    assert body["id"] == "user-42"
    assert body["push_tokens"] == []
    assert body["preferences"] == {"channels": {}, "categories": {}, "quiet_hours": None}

    replaced = await client.put(
        "/v1/recipients/user-42", json={"email": "j@example.org"}, headers=auth(key)
    )
    assert replaced.status_code == 200
    assert replaced.json()["email"] == "j@example.org"
    assert replaced.json()["phone"] is None  # PUT replaces: a field left out is cleared

    read = await client.get("/v1/recipients/user-42", headers=auth(key))
    assert read.status_code == 200
    assert read.json()["email"] == "j@example.org"
    assert read.json()["created_at"] == body["created_at"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-email"),
        ("phone", "07700900123"),
        ("whatsapp", "+0123"),
        ("locale", "german!"),
        ("timezone", "Mars/Olympus"),
        ("timezone", "../../etc/passwd"),
        ("data", {"blob": "x" * 5000}),
        ("email", "a\x00@example.com"),
    ],
)
async def test_a_bad_field_is_a_422_naming_it(
    client: httpx.AsyncClient, field: str, value: Any
) -> None:
    key = await new_key("a")
    response = await client.put("/v1/recipients/u1", json={field: value}, headers=auth(key))
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert (await client.get("/v1/recipients/u1", headers=auth(key))).status_code == 404


async def test_a_bad_id_or_body_is_refused(client: httpx.AsyncClient) -> None:
    key = await new_key("a")
    bad_id = await client.put("/v1/recipients/has space", json={}, headers=auth(key))
    assert bad_id.status_code == 422
    assert bad_id.json()["errors"][0]["field"] == "recipient_id"
    long_id = await client.put(f"/v1/recipients/{'a' * 256}", json={}, headers=auth(key))
    assert long_id.status_code == 422
    unknown = await client.put("/v1/recipients/u1", json={"mail": "x"}, headers=auth(key))
    assert unknown.status_code == 400
    wrong_type = await client.put("/v1/recipients/u1", json={"data": [1]}, headers=auth(key))
    assert wrong_type.status_code == 400
    no_key = await client.get("/v1/recipients/u1")
    assert no_key.status_code == 401


async def test_another_keys_recipient_is_invisible(client: httpx.AsyncClient) -> None:
    mine, theirs = await new_key("mine"), await new_key("theirs")
    assert (await client.put("/v1/recipients/u1", json=JANE, headers=auth(mine))).status_code == 201
    tokens = "/v1/recipients/u1/push-tokens"
    assert (await client.post(tokens, json={"token": TOKEN}, headers=auth(mine))).status_code == 201
    h = auth(theirs)
    assert (await client.get("/v1/recipients/u1", headers=h)).status_code == 404
    assert (await client.get("/v1/recipients/u1/preferences", headers=h)).status_code == 404
    prefs = {"channels": {"push": False}}
    assert (
        await client.put("/v1/recipients/u1/preferences", json=prefs, headers=h)
    ).status_code == 404
    assert (await client.post(tokens, json={"token": OTHER_TOKEN}, headers=h)).status_code == 404
    assert (await client.delete(f"{tokens}/{TOKEN}", headers=h)).status_code == 404
    assert (await client.delete("/v1/recipients/u1", headers=h)).status_code == 404
    # Their own u1 is a different recipient, and leaves mine alone.
    assert (await client.put("/v1/recipients/u1", json={}, headers=h)).status_code == 201
    mine_now = (await client.get("/v1/recipients/u1", headers=auth(mine))).json()
    assert mine_now["email"] == JANE["email"]
    assert mine_now["push_tokens"] == [TOKEN]


async def test_push_tokens_are_added_moved_and_removed(client: httpx.AsyncClient) -> None:
    key = await new_key("a")
    h = auth(key)
    for rid in ("u1", "u2"):
        await client.put(f"/v1/recipients/{rid}", json={}, headers=h)
    added = await client.post("/v1/recipients/u1/push-tokens", json={"token": TOKEN}, headers=h)
    assert added.status_code == 201
    assert added.json()["push_tokens"] == [TOKEN]
    again = await client.post("/v1/recipients/u1/push-tokens", json={"token": TOKEN}, headers=h)
    assert again.json()["push_tokens"] == [TOKEN]
    moved = await client.post("/v1/recipients/u2/push-tokens", json={"token": TOKEN}, headers=h)
    assert moved.json()["push_tokens"] == [TOKEN]
    assert (await client.get("/v1/recipients/u1", headers=h)).json()["push_tokens"] == []

    bad = await client.post("/v1/recipients/u2/push-tokens", json={"token": "short"}, headers=h)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "token"
    missing = await client.post(
        "/v1/recipients/nobody/push-tokens", json={"token": TOKEN}, headers=h
    )
    assert missing.status_code == 404

    removed = await client.delete(f"/v1/recipients/u2/push-tokens/{TOKEN}", headers=h)
    assert removed.status_code == 204
    assert (await client.get("/v1/recipients/u2", headers=h)).json()["push_tokens"] == []
    gone = await client.delete(f"/v1/recipients/u2/push-tokens/{TOKEN}", headers=h)
    assert gone.status_code == 404


async def test_a_recipient_keeps_its_newest_twenty_tokens(client: httpx.AsyncClient) -> None:
    h = auth(await new_key("a"))
    await client.put("/v1/recipients/u1", json={}, headers=h)
    tokens = [f"{i:02d}" + "t" * 40 for i in range(21)]
    for token in tokens:
        response = await client.post(
            "/v1/recipients/u1/push-tokens", json={"token": token}, headers=h
        )
        assert response.status_code == 201
    kept = (await client.get("/v1/recipients/u1", headers=h)).json()["push_tokens"]
    assert sorted(kept) == sorted(tokens[1:])


async def test_preferences_round_trip_and_are_checked(client: httpx.AsyncClient) -> None:
    h = auth(await new_key("a"))
    await client.put("/v1/recipients/u1", json=JANE, headers=h)
    default = await client.get("/v1/recipients/u1/preferences", headers=h)
    assert default.json() == {"channels": {}, "categories": {}, "quiet_hours": None}
    wanted = {
        "channels": {"push": False},
        "categories": {"marketing": False},
        "quiet_hours": {"start": "22:00", "end": "07:00"},
    }
    saved = await client.put("/v1/recipients/u1/preferences", json=wanted, headers=h)
    assert saved.status_code == 200, saved.text
    assert saved.json() == wanted
    assert (await client.get("/v1/recipients/u1/preferences", headers=h)).json() == wanted
    # A PUT of the recipient keeps its preferences.
    await client.put("/v1/recipients/u1", json={"email": "x@example.com"}, headers=h)
    assert (await client.get("/v1/recipients/u1", headers=h)).json()["preferences"] == wanted

    for body, field in [
        ({"channels": {"pigeon": False}}, "channels.pigeon"),
        ({"categories": {"bad category": False}}, "categories.'bad category'"),
        ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "quiet_hours.start"),
        ({"quiet_hours": {"start": "07:00", "end": "07:00"}}, "quiet_hours.end"),
    ]:
        response = await client.put("/v1/recipients/u1/preferences", json=body, headers=h)
        assert response.status_code == 422, body
        assert response.json()["errors"][0]["field"] == field
    assert (await client.get("/v1/recipients/u1/preferences", headers=h)).json() == wanted
    missing = await client.put("/v1/recipients/nobody/preferences", json={}, headers=h)
    assert missing.status_code == 404


async def test_delete_erases_addresses_and_masks_history(
    herald: Callable[..., HeraldProcess],
) -> None:
    """Against `herald serve`, so that its whole log (stdout) can be searched."""
    server = herald()
    key = await new_key("a")
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        await _erase_flow(client, key)
    logged = server.logs()
    assert '"event":"recipient.deleted"' in logged  # the log is there, without addresses
    for address in [JANE["email"], JANE["phone"], JANE["whatsapp"], TOKEN]:
        assert address not in logged


async def _erase_flow(client: httpx.AsyncClient, key: str) -> None:
    h = auth(key)
    addresses = [JANE["email"], JANE["phone"], JANE["whatsapp"], TOKEN]
    await client.put("/v1/recipients/user-42", json=JANE, headers=h)
    await client.post("/v1/recipients/user-42/push-tokens", json={"token": TOKEN}, headers=h)
    await client.put(
        "/v1/recipients/user-42/preferences", json={"channels": {"sms": False}}, headers=h
    )
    sent = await client.post(
        "/v1/notifications",
        json={
            "channel": "email",
            "to": JANE["email"],
            "subject": "Hi",
            "body": f"Your address is {JANE['email']}",
        },
        headers=h,
    )
    await wait_status(client, key, sent.json()["id"])
    later = await client.post(
        "/v1/notifications",
        json={
            "channel": "sms",
            "to": JANE["phone"],
            "body": "Later",
            "send_at": "2099-01-01T00:00:00Z",
        },
        headers=h,
    )
    assert later.status_code == 422  # more than a year ahead
    waiting = await client.post(
        "/v1/notifications",
        json={
            "channel": "sms",
            "to": JANE["phone"],
            "body": "Later",
            "send_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        },
        headers=h,
    )
    ids = [sent.json()["id"], waiting.json()["id"]]
    # What the messages layer does when it sends to a recipient.
    await query(
        "UPDATE notifications SET recipient_id = 'user-42' WHERE id = ANY(CAST(:ids AS uuid[]))",
        ids=ids,
    )
    deleted = await client.delete("/v1/recipients/user-42", headers=h)
    assert deleted.status_code == 204

    assert (await client.get("/v1/recipients/user-42", headers=h)).status_code == 404
    assert await query("SELECT * FROM recipients") == []
    assert await query("SELECT * FROM recipient_push_tokens") == []
    rows = await query(
        "SELECT id::text, recipient, body, status FROM notifications ORDER BY created_at"
    )
    assert [r.recipient for r in rows] == ["j***@example.com", "+4477******23"]
    assert rows[0].body == "Your address is j***@example.com"
    assert rows[1].status == "cancelled"
    everything = json.dumps(
        [list(r) for r in await query("SELECT * FROM notifications")]
        + [list(r) for r in await query("SELECT * FROM notification_events")],
        default=str,
    )
    for address in addresses:
        assert address not in everything
    read = await client.get(f"/v1/notifications/{ids[0]}", headers=h)
    assert read.json()["to"] == "j***@example.com"

    again = await client.delete("/v1/recipients/user-42", headers=h)
    assert again.status_code == 404
    recreated = await client.put("/v1/recipients/user-42", json={}, headers=h)
    assert recreated.status_code == 201
