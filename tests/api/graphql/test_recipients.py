"""Recipients over GraphQL: the same operations, rules and scoping as REST."""

from __future__ import annotations

import httpx

from tests.api.graphql.conftest import codes, graphql
from tests.notifications.conftest import new_key

TOKEN = "f" * 40 + ":APA91b" + "x" * 100
FIELDS = """id email phone whatsapp locale timezone data pushTokens createdAt
    preferences { channels categories quietHours { start end } }"""
UPSERT = f"""mutation($id: String!, $input: RecipientInput!) {{
    upsertRecipient(id: $id, input: $input) {{ {FIELDS} }} }}"""
READ = f"query($id: String!) {{ recipient(id: $id) {{ {FIELDS} }} }}"
DELETE = "mutation($id: String!) { deleteRecipient(id: $id) }"
ADD_TOKEN = """mutation($id: String!, $token: String!) {
    addPushToken(recipientId: $id, token: $token) { pushTokens } }"""
REMOVE_TOKEN = """mutation($id: String!, $token: String!) {
    removePushToken(recipientId: $id, token: $token) }"""
SET_PREFERENCES = """mutation($id: String!, $input: PreferencesInput!) {
    setPreferences(recipientId: $id, input: $input) { channels categories quietHours { start end } } }"""
JANE = {
    "email": "jane@example.com",
    "phone": "+447700900123",
    "locale": "de",
    "timezone": "Europe/Berlin",
    "data": {"name": "Jane"},
}


def field_of(body: dict) -> str:  # type: ignore[type-arg]
    return str(body["errors"][0]["extensions"].get("field"))


async def test_every_recipient_operation(client: httpx.AsyncClient) -> None:
    key = await new_key("a")
    created = await graphql(client, key, UPSERT, id="user-42", input=JANE)
    recipient = created["data"]["upsertRecipient"]
    assert recipient["email"] == "jane@example.com"
    assert recipient["data"] == {"name": "Jane"}
    assert recipient["preferences"] == {"channels": {}, "categories": {}, "quietHours": None}

    tokens = await graphql(client, key, ADD_TOKEN, id="user-42", token=TOKEN)
    assert tokens["data"]["addPushToken"]["pushTokens"] == [TOKEN]
    wanted = {
        "channels": {"push": False},
        "categories": {"marketing": False},
        "quietHours": {"start": "22:00", "end": "07:00"},
    }
    saved = await graphql(client, key, SET_PREFERENCES, id="user-42", input=wanted)
    assert saved["data"]["setPreferences"] == wanted
    read = (await graphql(client, key, READ, id="user-42"))["data"]["recipient"]
    assert read["preferences"] == wanted
    assert read["pushTokens"] == [TOKEN]

    removed = await graphql(client, key, REMOVE_TOKEN, id="user-42", token=TOKEN)
    assert removed["data"]["removePushToken"] is True
    assert codes(await graphql(client, key, REMOVE_TOKEN, id="user-42", token=TOKEN)) == [
        "NOT_FOUND"
    ]
    assert (await graphql(client, key, DELETE, id="user-42"))["data"]["deleteRecipient"] is True
    assert codes(await graphql(client, key, READ, id="user-42")) == ["NOT_FOUND"]
    assert codes(await graphql(client, key, DELETE, id="user-42")) == ["NOT_FOUND"]


async def test_bad_fields_are_named_as_arguments(client: httpx.AsyncClient) -> None:
    key = await new_key("a")
    bad_email = await graphql(client, key, UPSERT, id="u1", input={"email": "nope"})
    assert codes(bad_email) == ["BAD_USER_INPUT"]
    assert field_of(bad_email) == "input.email"
    bad_zone = await graphql(client, key, UPSERT, id="u1", input={"timezone": "Mars/Base"})
    assert field_of(bad_zone) == "input.timezone"
    bad_id = await graphql(client, key, UPSERT, id="has space", input={})
    assert field_of(bad_id) == "id"
    not_object = await graphql(client, key, UPSERT, id="u1", input={"data": [1]})
    assert codes(not_object) == ["BAD_USER_INPUT"]
    assert field_of(not_object) == "input.data"

    await graphql(client, key, UPSERT, id="u1", input={})
    bad_token = await graphql(client, key, ADD_TOKEN, id="u1", token="short")
    assert field_of(bad_token) == "token"
    bad_quiet = await graphql(
        client,
        key,
        SET_PREFERENCES,
        id="u1",
        input={"quietHours": {"start": "24:00", "end": "07:00"}},
    )
    assert field_of(bad_quiet) == "input.quietHours.start"
    bad_channel = await graphql(
        client, key, SET_PREFERENCES, id="u1", input={"channels": {"fax": False}}
    )
    assert field_of(bad_channel) == "input.channels.fax"
    not_bool = await graphql(
        client, key, SET_PREFERENCES, id="u1", input={"channels": {"push": "no"}}
    )
    assert codes(not_bool) == ["BAD_USER_INPUT"]


async def test_another_keys_recipient_is_not_found(client: httpx.AsyncClient) -> None:
    mine, theirs = await new_key("mine"), await new_key("theirs")
    await graphql(client, mine, UPSERT, id="u1", input=JANE)
    assert codes(await graphql(client, theirs, READ, id="u1")) == ["NOT_FOUND"]
    assert codes(await graphql(client, theirs, DELETE, id="u1")) == ["NOT_FOUND"]
    assert codes(await graphql(client, theirs, ADD_TOKEN, id="u1", token=TOKEN)) == ["NOT_FOUND"]
    assert codes(
        await graphql(client, theirs, SET_PREFERENCES, id="u1", input={"channels": {}})
    ) == ["NOT_FOUND"]
    assert (await graphql(client, mine, READ, id="u1"))["data"]["recipient"]["email"]
