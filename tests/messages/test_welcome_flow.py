"""The welcome flow end to end against the provider stand-ins: one message, rendered in the
recipient's locale, to every channel they can be reached on and have not turned off."""

from __future__ import annotations

from typing import Any

import httpx

from tests.messages.support import (
    PUSH_TOKEN,
    WELCOME,
    Providers,
    auth,
    put,
    send,
    statuses,
    wait_message,
    welcome_jane,
)


def _sent(message: dict[str, Any]) -> bool:
    return all(n["status"] == "sent" for n in message["notifications"])


async def test_one_message_sends_the_rendered_email_and_a_push_in_the_recipients_locale(
    client: httpx.AsyncClient, api_key: str, providers: Providers
) -> None:
    await welcome_jane(client, api_key)
    response = await send(
        client, api_key, {"template": "welcome", "recipient": "user-42", "data": {"name": "Jane"}}
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    # the contract
    assert [n["channel"] for n in accepted["notifications"]] == ["email", "push"]
    assert {n["status"] for n in accepted["notifications"]} == {"queued"}
    assert accepted["skipped"] == [{"channel": "sms", "reason": "not_in_template"}]
    assert accepted["locale"] == "de"
    assert accepted["template"] == "welcome"
    assert accepted["recipient"] == "user-42"

    done = await wait_message(client, api_key, accepted["id"], _sent)
    assert statuses(done) == {"email": "sent", "push": "sent"}
    (email,) = providers.emails()
    assert email["Subject"] == "Willkommen, Jane"
    assert email["To"] == "jane@example.com"
    html = email.get_body(preferencelist=("html",))
    text = email.get_body(preferencelist=("plain",))
    assert html is not None
    assert text is not None
    assert html.get_content().strip() == "<p>Hallo <b>Jane</b></p>"
    assert text.get_content().strip() == "Hallo Jane"
    (push,) = providers.pushes
    assert push["message"]["token"] == PUSH_TOKEN
    assert push["message"]["notification"] == {"title": "Willkommen", "body": "Hallo Jane"}
    # each notification carries its final content, and names its message
    email_notification = next(n for n in done["notifications"] if n["channel"] == "email")
    assert email_notification["subject"] == "Willkommen, Jane"
    assert email_notification["html"] == "<p>Hallo <b>Jane</b></p>"


async def test_a_requested_locale_and_the_default_locale(
    client: httpx.AsyncClient, api_key: str, providers: Providers
) -> None:
    await welcome_jane(client, api_key)
    await put(
        client, api_key, "/v1/recipients/user-7", {"email": "sam@example.com", "locale": "fr"}
    )
    english = await send(
        client,
        api_key,
        {"template": "welcome", "recipient": "user-42", "locale": "en", "data": {"name": "Jane"}},
    )
    french = await send(
        client, api_key, {"template": "welcome", "recipient": "user-7", "data": {"name": "Sam"}}
    )
    assert english.json()["locale"] == "en"
    assert english.json()["notifications"][0]["subject"] == "Welcome, Jane"
    # no French variant: the template's default locale
    assert french.json()["locale"] == "en"
    assert french.json()["notifications"][0]["subject"] == "Welcome, Sam"
    assert french.json()["skipped"] == [{"channel": "push", "reason": "no_address"}]


async def test_an_opted_out_channel_is_skipped_with_its_reason_a_critical_template_sent_anyway(
    client: httpx.AsyncClient, api_key: str, providers: Providers
) -> None:
    await welcome_jane(client, api_key)
    await put(
        client,
        api_key,
        "/v1/recipients/user-42/preferences",
        {"channels": {"push": False}, "categories": {"account": False, "marketing": False}},
    )
    skipped = (
        await send(
            client,
            api_key,
            {"template": "welcome", "recipient": "user-42", "data": {"name": "Jane"}},
        )
    ).json()
    assert skipped["notifications"] == []
    assert skipped["skipped"] == [
        {"channel": "email", "reason": "category_opted_out"},
        {"channel": "sms", "reason": "not_in_template"},
        {"channel": "push", "reason": "opted_out"},
    ]

    await put(client, api_key, "/v1/templates/security", {**WELCOME, "critical": True})
    critical = (
        await send(
            client,
            api_key,
            {"template": "security", "recipient": "user-42", "data": {"name": "Jane"}},
        )
    ).json()
    assert [n["channel"] for n in critical["notifications"]] == ["email", "push"]
    done = await wait_message(client, api_key, critical["id"], _sent)
    assert statuses(done) == {"email": "sent", "push": "sent"}
    assert len(providers.pushes) == 1


async def test_inline_addresses_need_no_stored_recipient(
    client: httpx.AsyncClient, api_key: str, providers: Providers
) -> None:
    await put(client, api_key, "/v1/templates/welcome", WELCOME)
    body = {
        "template": "welcome",
        "recipient": {"email": "kim@example.com", "locale": "de"},
        "data": {"name": "Kim"},
    }
    accepted = (await send(client, api_key, body)).json()
    assert "recipient" not in accepted  # null fields are left out
    assert [n["to"] for n in accepted["notifications"]] == ["kim@example.com"]
    assert accepted["skipped"] == [{"channel": "push", "reason": "no_address"}]
    await wait_message(client, api_key, accepted["id"], _sent)
    assert providers.emails()[0]["Subject"] == "Willkommen, Kim"


async def test_read_back_with_get_and_the_message_id_on_each_notification(
    client: httpx.AsyncClient, api_key: str, providers: Providers
) -> None:
    await welcome_jane(client, api_key)
    accepted = (
        await send(
            client,
            api_key,
            {"template": "welcome", "recipient": "user-42", "data": {"name": "Jane"}},
        )
    ).json()
    read = (await client.get(f"/v1/messages/{accepted['id']}", headers=auth(api_key))).json()
    assert read["id"] == accepted["id"]
    assert [n["id"] for n in read["notifications"]] == [n["id"] for n in accepted["notifications"]]
    assert read["template_version"] == accepted["template_version"] >= 1
