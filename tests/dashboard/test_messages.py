"""The dashboard's message pages: recent messages, one message with its notifications."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from tests.conftest import running_app
from tests.dashboard.conftest import BASE, dashboard_settings, sign_in
from tests.messages.support import send, welcome_jane
from tests.notifications.conftest import new_key

from herald.logging import mask_address


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(dashboard_settings()) as (_, client):
        yield client


async def test_messages_list_and_a_message_with_its_notifications_and_skips(
    client: httpx.AsyncClient,
) -> None:
    key = await new_key("dashboard-messages")
    await welcome_jane(client, key)
    accepted = (
        await send(
            client, key, {"template": "welcome", "recipient": "user-42", "data": {"name": "Jane"}}
        )
    ).json()
    await sign_in(client)

    listing = await client.get(f"{BASE}/messages")
    assert listing.status_code == 200, listing.text
    assert re.findall(r'<tr data-id="([0-9a-f-]+)">', listing.text) == [accepted["id"]]
    assert "welcome v1" in listing.text
    assert "user-42" in listing.text
    assert "sms: not_in_template" in listing.text

    page = await client.get(f"{BASE}/messages/{accepted['id']}")
    assert page.status_code == 200, page.text
    for notification in accepted["notifications"]:
        assert f'href="{BASE}/notifications/{notification["id"]}"' in page.text
    assert mask_address("jane@example.com") in page.text
    assert "jane@example.com" not in page.text
    assert 'data-skipped="sms"' in page.text

    missing = await client.get(f"{BASE}/messages/{uuid.uuid4()}")
    assert missing.status_code == 404


async def test_the_message_pages_need_a_session(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{BASE}/messages", follow_redirects=False)
    assert response.status_code in (302, 303, 401)


async def test_templates_by_api_key_and_a_preview_with_given_data(
    client: httpx.AsyncClient,
) -> None:
    key = await new_key("dashboard-templates")
    await welcome_jane(client, key)
    await sign_in(client)
    listing = await client.get(f"{BASE}/templates")
    assert listing.status_code == 200, listing.text
    assert 'data-template="welcome"' in listing.text
    link = re.search(rf'href="({BASE}/templates/[0-9a-f-]+/welcome)"', listing.text)
    assert link is not None

    page = await client.get(link.group(1), params={"data": '{"name": "<Jane>"}', "locale": "de"})
    assert page.status_code == 200, page.text
    assert 'data-preview="email"' in page.text
    assert 'data-preview="push"' in page.text
    assert "Willkommen, &lt;Jane&gt;" in page.text  # rendered, then escaped by the page
    assert "&lt;b&gt;&amp;lt;Jane&amp;gt;&lt;/b&gt;" in page.text  # the HTML part autoescaped

    missing = await client.get(link.group(1), params={"data": "{}"})
    assert missing.status_code == 200
    assert "data.name" in missing.text
    assert "data-preview-error" in missing.text
    unknown = await client.get(f"{BASE}/templates/{uuid.uuid4()}/welcome")
    assert unknown.status_code == 404
