"""What a message request must meet: errors naming the field, idempotency, API-key scope,
and the batch form."""

from __future__ import annotations

import httpx

from tests.messages.support import (
    WELCOME,
    Providers,
    auth,
    new_key,
    put,
    send,
    welcome_jane,
)

JANE_WELCOME = {"template": "welcome", "recipient": "user-42", "data": {"name": "Jane"}}


def _fields(response: httpx.Response) -> list[str]:
    return [error["field"] for error in response.json().get("errors", [])]


async def test_a_missing_variable_is_a_422_naming_it_and_nothing_is_stored(
    client: httpx.AsyncClient, api_key: str, providers: Providers
) -> None:
    await welcome_jane(client, api_key)
    response = await send(client, api_key, {"template": "welcome", "recipient": "user-42"})
    assert response.status_code == 422, response.text
    assert "data.name" in _fields(response)
    assert "name" in response.json()["detail"]
    listed = await client.get("/v1/notifications", headers=auth(api_key))
    assert listed.json()["items"] == []


async def test_bad_fields_are_422s_naming_them(
    client: httpx.AsyncClient, api_key: str, providers: Providers
) -> None:
    await welcome_jane(client, api_key)
    cases = [
        ({**JANE_WELCOME, "routing": "sometimes"}, "routing"),
        ({**JANE_WELCOME, "channels": ["email", "fax"]}, "channels[1]"),
        ({**JANE_WELCOME, "channels": []}, "channels"),
        ({**JANE_WELCOME, "priority": "urgent"}, "priority"),
        ({**JANE_WELCOME, "send_at": "2030-01-01T09:00:00"}, "send_at"),
        ({**JANE_WELCOME, "template": "nope"}, "template"),
        ({**JANE_WELCOME, "recipient": "user-404"}, "recipient"),
        ({**JANE_WELCOME, "recipient": {"email": "not an address"}}, "recipient.email"),
        (
            {**JANE_WELCOME, "recipient": {"email": "a@example.com", "timezone": "Mars/Olympus"}},
            "recipient.timezone",
        ),
    ]
    for body, field in cases:
        response = await send(client, api_key, body)
        assert response.status_code == 422, (body, response.text)
        assert field in _fields(response), (body, response.text)
    unknown = await send(client, api_key, {**JANE_WELCOME, "colour": "red"})
    assert unknown.status_code == 400
    assert _fields(unknown) == ["colour"]


async def test_the_same_idempotency_key_returns_the_first_message(
    client: httpx.AsyncClient, api_key: str, providers: Providers
) -> None:
    await welcome_jane(client, api_key)
    first = await send(client, api_key, JANE_WELCOME, **{"Idempotency-Key": "signup-42"})
    again = await send(client, api_key, JANE_WELCOME, **{"Idempotency-Key": "signup-42"})
    assert first.status_code == again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert [n["id"] for n in again.json()["notifications"]] == [
        n["id"] for n in first.json()["notifications"]
    ]
    other = await send(
        client,
        api_key,
        {**JANE_WELCOME, "data": {"name": "Joan"}},
        **{"Idempotency-Key": "signup-42"},
    )
    assert other.status_code == 422
    assert _fields(other) == ["Idempotency-Key"]
    listed = await client.get("/v1/notifications", headers=auth(api_key))
    assert len(listed.json()["items"]) == 2


async def test_another_keys_recipient_template_and_message_are_invisible(
    client: httpx.AsyncClient, api_key: str, providers: Providers
) -> None:
    await welcome_jane(client, api_key)
    mine = (await send(client, api_key, JANE_WELCOME)).json()
    other = await new_key("someone-else")
    response = await send(client, other, JANE_WELCOME)
    assert response.status_code == 422
    assert set(_fields(response)) == {"template"}
    await put(client, other, "/v1/templates/welcome", WELCOME)
    response = await send(client, other, JANE_WELCOME)
    assert response.status_code == 422
    assert _fields(response) == ["recipient"]
    read = await client.get(f"/v1/messages/{mine['id']}", headers=auth(other))
    assert read.status_code == 404


async def test_a_batch_is_one_message_per_recipient_all_or_nothing(
    client: httpx.AsyncClient, api_key: str, providers: Providers
) -> None:
    await welcome_jane(client, api_key)
    await put(client, api_key, "/v1/recipients/user-7", {"email": "sam@example.com"})
    batch = {
        "template": "welcome",
        "data": {"name": "friend"},
        "recipients": ["user-42", {"recipient": "user-7", "data": {"name": "Sam"}}, "user-404"],
    }
    refused = await client.post("/v1/messages/batch", json=batch, headers=auth(api_key))
    assert refused.status_code == 422
    assert _fields(refused) == ["recipients[2].recipient"]
    assert (await client.get("/v1/notifications", headers=auth(api_key))).json()["items"] == []

    batch["recipients"] = batch["recipients"][:2]
    accepted = await client.post("/v1/messages/batch", json=batch, headers=auth(api_key))
    assert accepted.status_code == 202, accepted.text
    messages = accepted.json()["messages"]
    assert [m["recipient"] for m in messages] == ["user-42", "user-7"]
    assert messages[0]["notifications"][0]["subject"] == "Willkommen, friend"
    assert messages[1]["notifications"][0]["subject"] == "Welcome, Sam"

    too_many = {**batch, "recipients": [f"user-{i}" for i in range(1001)]}
    response = await client.post("/v1/messages/batch", json=too_many, headers=auth(api_key))
    assert response.status_code == 422
    assert _fields(response) == ["recipients"]
