"""Templates over GraphQL: the same operations, rules and errors as REST."""

from __future__ import annotations

import httpx

from tests.api.graphql.conftest import codes, graphql
from tests.messages.test_templates import WELCOME

SAVE = """
mutation($key: String!, $input: TemplateInput!) {
  saveTemplate(key: $key, input: $input) { key version category critical defaultLocale locales }
}"""
PREVIEW = """
query($key: String!, $data: JSON, $recipient: JSON, $locale: String, $channels: [Channel!]) {
  templatePreview(key: $key, data: $data, recipient: $recipient, locale: $locale,
                  channels: $channels) {
    version localeUsed channels { channel subject body html data }
  }
}"""
INPUT = {
    "defaultLocale": WELCOME["default_locale"],
    "locales": WELCOME["locales"],
    "category": WELCOME["category"],
}


async def test_save_read_list_preview_and_delete(client: httpx.AsyncClient, api_key: str) -> None:
    first = await graphql(client, api_key, SAVE, key="welcome", input=INPUT)
    second = await graphql(client, api_key, SAVE, key="welcome", input=INPUT)
    assert first["data"]["saveTemplate"]["version"] == 1
    assert second["data"]["saveTemplate"]["version"] == 2
    assert second["data"]["saveTemplate"]["locales"] == WELCOME["locales"]
    read = await graphql(
        client, api_key, '{ template(key: "welcome", version: 1) { version category } }'
    )
    assert read["data"]["template"] == {"version": 1, "category": "account"}
    listed = await graphql(client, api_key, "{ templates { items { key version } nextCursor } }")
    assert listed["data"]["templates"] == {
        "items": [{"key": "welcome", "version": 2}],
        "nextCursor": None,
    }
    german = await graphql(
        client,
        api_key,
        PREVIEW,
        key="welcome",
        data={"name": "<Jane>"},
        recipient={"id": "user-42", "locale": "de"},
    )
    preview = german["data"]["templatePreview"]
    assert (preview["version"], preview["localeUsed"]) == (2, "de")
    assert [c["channel"] for c in preview["channels"]] == ["EMAIL", "SMS"]
    assert preview["channels"][1]["body"] == "Hallo user-42"
    english = await graphql(
        client, api_key, PREVIEW, key="welcome", data={"name": "<Jane>"}, channels=["EMAIL"]
    )
    [email] = english["data"]["templatePreview"]["channels"]
    assert email["html"] == "<p>Hi <b>&lt;Jane&gt;</b></p>"
    assert email["subject"] == "Welcome, <Jane>"
    deleted = await graphql(client, api_key, 'mutation { deleteTemplate(key: "welcome") }')
    assert deleted["data"] == {"deleteTemplate": True}
    gone = await graphql(client, api_key, '{ template(key: "welcome") { version } }')
    assert codes(gone) == ["NOT_FOUND"]


async def test_syntax_error_missing_variable_and_injection_name_the_field(
    client: httpx.AsyncClient, api_key: str
) -> None:
    broken = {"defaultLocale": "en", "locales": {"en": {"sms": {"body": "a\nb\n{{ x }"}}}}
    body = await graphql(client, api_key, SAVE, key="t", input=broken)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "input.locales.en.sms.body"
    assert "line 3:" in error["message"]
    evil = {"defaultLocale": "en", "locales": {"en": {"sms": {"body": "{{ ''.__class__ }}"}}}}
    refused = await graphql(client, api_key, SAVE, key="t", input=evil)
    assert "sandbox" in refused["errors"][0]["message"]
    await graphql(client, api_key, SAVE, key="welcome", input=INPUT)
    missing = await graphql(client, api_key, PREVIEW, key="welcome")
    [error] = missing["errors"]
    assert error["extensions"]["field"] == "data.name"
    assert error["message"].endswith("undefined variable 'name' in email.subject")


async def test_a_preview_for_a_recipient_id_no_recipient_can_have_is_bad_input(
    client: httpx.AsyncClient, api_key: str
) -> None:
    await graphql(client, api_key, SAVE, key="welcome", input=INPUT)
    query = """
    query($id: String!) {
      templatePreview(key: "welcome", data: {name: "x"}, recipientId: $id) { version }
    }"""
    body = await graphql(client, api_key, query, id="a\x00b")
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "recipient"
