"""`/v1/templates` over REST: save (versions), read, list, delete, preview, and the errors."""

from __future__ import annotations

import base64
import copy
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import DATABASE_URL, make_settings, running_app
from tests.messages.test_templates import WELCOME
from tests.notifications.conftest import auth, new_key


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(make_settings(enable_workers=False)) as (_, client):
        yield client


@pytest.fixture
async def key() -> str:
    return await new_key("templates")


async def test_save_versions_read_and_read_an_older_version(
    client: httpx.AsyncClient, key: str
) -> None:
    first = await client.put("/v1/templates/welcome", json=WELCOME, headers=auth(key))
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 1
    changed = copy.deepcopy(WELCOME)
    changed["locales"]["en"]["email"]["subject"] = "Hello, {{ name }}"
    second = await client.put("/v1/templates/welcome", json=changed, headers=auth(key))
    assert second.json()["version"] == 2
    current = (await client.get("/v1/templates/welcome", headers=auth(key))).json()
    assert current["version"] == 2
    assert current["locales"]["en"]["email"]["subject"] == "Hello, {{ name }}"
    assert current["category"] == "account"
    old = await client.get("/v1/templates/welcome?version=1", headers=auth(key))
    assert old.json()["locales"] == WELCOME["locales"]
    missing = await client.get("/v1/templates/welcome?version=3", headers=auth(key))
    assert missing.status_code == 404


async def test_another_keys_template_is_not_found(client: httpx.AsyncClient, key: str) -> None:
    await client.put("/v1/templates/welcome", json=WELCOME, headers=auth(key))
    other = await new_key("other")
    assert (await client.get("/v1/templates/welcome", headers=auth(other))).status_code == 404
    listed = (await client.get("/v1/templates", headers=auth(other))).json()
    assert listed == {"items": [], "next_cursor": None}


async def test_list_pages_by_key_with_the_current_versions(
    client: httpx.AsyncClient, key: str
) -> None:
    for name in ("c", "a", "b", "a"):
        await client.put(f"/v1/templates/{name}", json=WELCOME, headers=auth(key))
    page = (await client.get("/v1/templates?limit=2", headers=auth(key))).json()
    assert [(t["key"], t["version"]) for t in page["items"]] == [("a", 2), ("b", 1)]
    rest = await client.get(
        f"/v1/templates?limit=2&cursor={page['next_cursor']}", headers=auth(key)
    )
    assert [t["key"] for t in rest.json()["items"]] == ["c"]
    assert rest.json()["next_cursor"] is None
    nul = base64.urlsafe_b64encode(b"a\x00").decode()
    for cursor in ("%%%", nul):
        bad = await client.get(f"/v1/templates?cursor={cursor}", headers=auth(key))
        assert bad.status_code == 400, bad.text


async def test_delete_hides_it_and_a_new_save_continues_the_numbering(
    client: httpx.AsyncClient, key: str
) -> None:
    await client.put("/v1/templates/welcome", json=WELCOME, headers=auth(key))
    assert (await client.delete("/v1/templates/welcome", headers=auth(key))).status_code == 204
    assert (await client.get("/v1/templates/welcome", headers=auth(key))).status_code == 404
    assert (await client.delete("/v1/templates/welcome", headers=auth(key))).status_code == 404
    again = await client.put("/v1/templates/welcome", json=WELCOME, headers=auth(key))
    assert again.json()["version"] == 2


async def test_a_syntax_error_is_a_422_naming_the_field_and_line(
    client: httpx.AsyncClient, key: str
) -> None:
    body = copy.deepcopy(WELCOME)
    body["locales"]["de"]["email"]["text"] = "Hallo\n\n{% if name %}{{ name }}"
    response = await client.put("/v1/templates/welcome", json=body, headers=auth(key))
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "locales.de.email.text"
    assert error["message"].startswith("line 3:")
    assert (await client.get("/v1/templates/welcome", headers=auth(key))).status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"default_locale": "fr"}, "default_locale"),
        ({"locales": {}}, "locales"),
        ({"locales": {"en": {}}}, "locales.en"),
        ({"locales": {"en": {"whatsapp": {}}}}, "locales.en.whatsapp"),
        ({"locales": {"en": {"email": {"subject": "Hi"}}}}, "locales.en.email"),
        ({"category": "no spaces please"}, "category"),
    ],
)
async def test_rules_of_a_template_are_422s_naming_the_field(
    client: httpx.AsyncClient, key: str, change: dict[str, Any], field: str
) -> None:
    body = {**WELCOME, **change}
    response = await client.put("/v1/templates/welcome", json=body, headers=auth(key))
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_injection_is_refused_at_save_with_a_clear_message(
    client: httpx.AsyncClient, key: str
) -> None:
    body = {"default_locale": "en", "locales": {"en": {"sms": {"body": "{{ ''.__class__ }}"}}}}
    response = await client.put("/v1/templates/evil", json=body, headers=auth(key))
    assert response.status_code == 422
    assert "not allowed by the template sandbox" in response.json()["errors"][0]["message"]


async def test_injection_through_a_filter_is_refused_at_render(
    client: httpx.AsyncClient, key: str
) -> None:
    body = {
        "default_locale": "en",
        "locales": {"en": {"sms": {"body": "{{ name|attr('__class__') }}"}}},
    }
    assert (await client.put("/v1/templates/evil", json=body, headers=auth(key))).status_code == 200
    response = await client.post(
        "/v1/templates/evil/preview", json={"data": {"name": "x"}}, headers=auth(key)
    )
    assert response.status_code == 422
    assert "sandbox" in response.json()["errors"][0]["message"]


async def test_preview_renders_each_channel_for_the_recipients_locale(
    client: httpx.AsyncClient, key: str
) -> None:
    await client.put("/v1/templates/welcome", json=WELCOME, headers=auth(key))
    response = await client.post(
        "/v1/templates/welcome/preview",
        json={"data": {"name": "<Jane>"}, "recipient": {"id": "user-42", "locale": "de-AT"}},
        headers=auth(key),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["version"], body["locale_used"]) == (1, "de")
    assert [c["channel"] for c in body["channels"]] == ["email", "sms"]
    assert body["channels"][0]["subject"] == "Willkommen, <Jane>"
    assert body["channels"][1]["body"] == "Hallo user-42"
    english = await client.post(
        "/v1/templates/welcome/preview",
        json={"data": {"name": "<Jane>"}, "locale": "fr", "channels": ["email"]},
        headers=auth(key),
    )
    [email] = english.json()["channels"]
    assert english.json()["locale_used"] == "en"
    assert email["html"] == "<p>Hi <b>&lt;Jane&gt;</b></p>"
    assert email["body"] == "Hi <Jane>"


async def test_preview_with_a_missing_variable_is_a_422_naming_it(
    client: httpx.AsyncClient, key: str
) -> None:
    await client.put("/v1/templates/welcome", json=WELCOME, headers=auth(key))
    response = await client.post("/v1/templates/welcome/preview", json={}, headers=auth(key))
    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "field": "data.name",
        "message": "undefined variable 'name' in email.subject",
    }
    unknown = await client.post(
        "/v1/templates/welcome/preview",
        json={"data": {"name": "x"}, "channels": ["fax"]},
        headers=auth(key),
    )
    assert unknown.status_code == 422
    assert (
        await client.post("/v1/templates/nope/preview", json={}, headers=auth(key))
    ).status_code == 404


async def test_preview_with_a_recipient_id_no_recipient_can_have_is_a_422(
    client: httpx.AsyncClient, key: str
) -> None:
    # Found by the schemathesis fuzz test: a NUL in the id was a 500 (Postgres refuses it).
    await client.put("/v1/templates/welcome", json=WELCOME, headers=auth(key))
    for bad in ("a\u0000b", "", "with space", "x" * 300):
        response = await client.post(
            "/v1/templates/welcome/preview",
            json={"data": {"name": "x"}, "recipient": bad},
            headers=auth(key),
        )
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["errors"][0]["field"] == "recipient"


async def test_preview_with_a_stored_recipient_by_id(client: httpx.AsyncClient, key: str) -> None:
    engine = create_async_engine(DATABASE_URL)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO recipients (api_key_id, id, email, locale, data, preferences,"
                    " created_at, updated_at) SELECT id, 'user-42', 'jane@example.com', 'de',"
                    " '{}', '{}', now(), now() FROM api_keys WHERE prefix = :prefix"
                ),
                {"prefix": key[:10]},
            )
    finally:
        await engine.dispose()
    await client.put("/v1/templates/welcome", json=WELCOME, headers=auth(key))
    response = await client.post(
        "/v1/templates/welcome/preview",
        json={"data": {"name": "Jane"}, "recipient": "user-42", "channels": ["sms"]},
        headers=auth(key),
    )
    assert response.status_code == 200, response.text
    assert response.json()["locale_used"] == "de"
    assert response.json()["channels"][0]["body"] == "Hallo user-42"
    other = await new_key("other")
    await client.put("/v1/templates/welcome", json=WELCOME, headers=auth(other))
    unseen = await client.post(
        "/v1/templates/welcome/preview",
        json={"data": {"name": "Jane"}, "recipient": "user-42"},
        headers=auth(other),
    )
    assert unseen.status_code == 404


async def test_the_openapi_document_has_every_template_operation(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    paths = document["paths"]
    assert set(paths["/v1/templates/{template_key}"]) == {"put", "get", "delete"}
    assert set(paths["/v1/templates"]) == {"get"}
    preview = paths["/v1/templates/{template_key}/preview"]["post"]
    assert {"200", "404", "422"} <= set(preview["responses"])
    assert "TemplateInput" in document["components"]["schemas"]
