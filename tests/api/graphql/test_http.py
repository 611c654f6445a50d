"""GraphQL over HTTP: every query and mutation, the errors, auth, limits, the DataLoader."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from gql import GraphQLRequest
from litestar import Litestar
from sqlalchemy import event

from herald.api.graphql.schema import build_schema
from tests.api.graphql.conftest import EMAIL, NOTIFICATION_FIELDS, codes, gql_client, graphql
from tests.notifications.conftest import auth, new_key, wait_status

SEND = f"""mutation Send($input: NotificationInput!, $key: String) {{
  sendNotification(input: $input, idempotencyKey: $key) {{ {NOTIFICATION_FIELDS} }}
}}"""
SEND_MANY = f"""mutation SendMany($inputs: [NotificationInput!]!, $key: String) {{
  sendNotifications(inputs: $inputs, idempotencyKey: $key) {{ {NOTIFICATION_FIELDS} }}
}}"""
READ = f"query Read($id: ID!) {{ notification(id: $id) {{ {NOTIFICATION_FIELDS} }} }}"
LIST = f"""query List($filter: NotificationFilter, $first: Int!, $after: String) {{
  notifications(filter: $filter, first: $first, after: $after) {{
    edges {{ cursor node {{ {NOTIFICATION_FIELDS} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""
CANCEL = "mutation Cancel($id: ID!) { cancelNotification(id: $id) { id status } }"


async def test_send_read_and_deliver_with_the_gql_client(
    app_client: tuple[Litestar, httpx.AsyncClient], api_key: str
) -> None:
    app, client = app_client
    async with gql_client(app, api_key) as session:
        sent = (await session.execute(GraphQLRequest(SEND, variable_values={"input": EMAIL})))[
            "sendNotification"
        ]
        assert sent["status"] == "QUEUED"
        assert sent["events"][0] == {**sent["events"][0], "status": "QUEUED", "sequence": 1}
        await wait_status(client, api_key, sent["id"])
        read = (await session.execute(GraphQLRequest(READ, variable_values={"id": sent["id"]})))[
            "notification"
        ]
    assert read["status"] == "SENT"
    assert [e["status"] for e in read["events"]] == ["QUEUED", "SENDING", "SENT"]
    assert [e["sequence"] for e in read["events"]] == [1, 2, 3]


async def test_the_batch_is_all_or_nothing_with_one_error_per_bad_field(
    client: httpx.AsyncClient, api_key: str
) -> None:
    good = await graphql(client, api_key, SEND_MANY, inputs=[EMAIL, {**EMAIL, "to": "b@x.io"}])
    assert [n["status"] for n in good["data"]["sendNotifications"]] == ["QUEUED", "QUEUED"]
    bad = await graphql(
        client,
        api_key,
        SEND_MANY,
        inputs=[EMAIL, {"channel": "EMAIL", "to": "nope"}, {"channel": "SMS", "to": "+1"}],
    )
    assert bad["data"] is None
    assert set(codes(bad)) == {"BAD_USER_INPUT"}
    fields = {e["extensions"]["field"] for e in bad["errors"]}
    assert {"inputs[1].to", "inputs[1].subject", "inputs[2].to"} <= fields, fields
    assert all(e["path"] == ["sendNotifications"] for e in bad["errors"])
    listed = await graphql(client, api_key, LIST, first=10)
    assert len(listed["data"]["notifications"]["edges"]) == 2


async def test_a_single_bad_input_names_each_field(client: httpx.AsyncClient, api_key: str) -> None:
    body = await graphql(client, api_key, SEND, input={"channel": "EMAIL", "to": "nope"})
    assert body["data"] is None
    assert {(e["extensions"]["code"], e["extensions"]["field"]) for e in body["errors"]} >= {
        ("BAD_USER_INPUT", "input.to"),
        ("BAD_USER_INPUT", "input.subject"),
    }
    typed = await graphql(client, api_key, SEND, input={**EMAIL, "data": {"k": 1}})
    assert codes(typed) == ["BAD_USER_INPUT"]
    assert typed["errors"][0]["extensions"]["field"] == "input.data"
    bad_key = await graphql(client, api_key, SEND, input=EMAIL, key="")
    assert [e["extensions"].get("field") for e in bad_key["errors"]] == ["idempotencyKey"]


async def test_list_filters_and_pages_with_one_events_query(
    app_client: tuple[Litestar, httpx.AsyncClient], api_key: str
) -> None:
    app, client = app_client
    for index in range(5):
        await graphql(client, api_key, SEND, input={**EMAIL, "reference": f"r{index % 2}"})
    statements: list[str] = []
    engine = app.state.resources.engine.sync_engine

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        page = await graphql(client, api_key, LIST, first=2)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    connection = page["data"]["notifications"]
    assert len(connection["edges"]) == 2
    assert all(edge["node"]["events"] for edge in connection["edges"])
    assert len([s for s in statements if "notification_events" in s]) == 1, statements
    assert len(statements) == 2, statements  # the page, then its events: no N+1
    assert connection["pageInfo"]["hasNextPage"] is True
    rest = await graphql(client, api_key, LIST, first=10, after=connection["pageInfo"]["endCursor"])
    assert len(rest["data"]["notifications"]["edges"]) == 3
    filtered = await graphql(client, api_key, LIST, first=10, filter={"reference": "r1"})
    assert len(filtered["data"]["notifications"]["edges"]) == 2
    by_status = await graphql(client, api_key, LIST, first=10, filter={"status": "FAILED"})
    assert by_status["data"]["notifications"]["edges"] == []
    too_many = await graphql(client, api_key, LIST, first=5000)
    assert codes(too_many) == ["BAD_USER_INPUT"]
    assert too_many["errors"][0]["extensions"]["field"] == "first"
    bad_cursor = await graphql(client, api_key, LIST, first=1, after="nonsense")
    assert codes(bad_cursor) == ["BAD_USER_INPUT"]


async def test_cancel_then_conflict_and_not_found(client: httpx.AsyncClient, api_key: str) -> None:
    later = {**EMAIL, "sendAt": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    response = await graphql(client, api_key, SEND, input=later)
    sent = response["data"]["sendNotification"]
    assert sent["status"] == "SCHEDULED"
    cancelled = await graphql(client, api_key, CANCEL, id=sent["id"])
    assert cancelled["data"]["cancelNotification"]["status"] == "CANCELLED"
    again = await graphql(client, api_key, CANCEL, id=sent["id"])
    assert codes(again) == ["CONFLICT"]
    missing = await graphql(client, api_key, READ, id="00000000-0000-0000-0000-000000000000")
    assert codes(missing) == ["NOT_FOUND"]
    assert missing["errors"][0]["path"] == ["notification"]
    not_an_id = await graphql(client, api_key, READ, id="x")
    assert codes(not_an_id) == ["BAD_USER_INPUT"]


async def test_another_keys_notifications_are_not_found(
    client: httpx.AsyncClient, api_key: str
) -> None:
    sent = (await graphql(client, api_key, SEND, input=EMAIL))["data"]["sendNotification"]
    other = await new_key("other")
    assert codes(await graphql(client, other, READ, id=sent["id"])) == ["NOT_FOUND"]
    assert codes(await graphql(client, other, CANCEL, id=sent["id"])) == ["NOT_FOUND"]
    listed = await graphql(client, other, LIST, first=10)
    assert listed["data"]["notifications"]["edges"] == []


async def test_the_same_idempotency_key_over_rest_and_graphql_is_one_notification(
    client: httpx.AsyncClient, api_key: str
) -> None:
    rest_body = {"channel": "email", "to": "jane@example.com", "subject": "Hi", "body": "Hello"}
    response = await client.post(
        "/v1/notifications", json=rest_body, headers={**auth(api_key), "Idempotency-Key": "k1"}
    )
    assert response.status_code == 202
    replay = await graphql(client, api_key, SEND, input=EMAIL, key="k1")
    assert replay["data"]["sendNotification"]["id"] == response.json()["id"]
    different = await graphql(client, api_key, SEND, input={**EMAIL, "body": "other"}, key="k1")
    assert codes(different) == ["BAD_USER_INPUT"]  # as REST's 422: the key is for another body
    assert different["errors"][0]["extensions"]["field"] == "idempotencyKey"


async def test_authentication(client: httpx.AsyncClient) -> None:
    for key in (None, "hk_unknown"):
        body = await graphql(client, key, READ, id="00000000-0000-0000-0000-000000000000")
        assert codes(body) == ["UNAUTHENTICATED"]
        body = await graphql(client, key, SEND, input=EMAIL)
        assert codes(body) == ["UNAUTHENTICATED"]


async def test_metadata_nested_too_deep_is_refused_naming_the_field(
    client: httpx.AsyncClient, api_key: str
) -> None:
    deep: Any = "leaf"
    for _ in range(33):
        deep = {"a": deep}
    body = await graphql(client, api_key, SEND, input={**EMAIL, "metadata": deep})
    assert codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "input.metadata"
    ok = await graphql(client, api_key, SEND, input={**EMAIL, "metadata": deep["a"]})
    assert ok["data"]["sendNotification"]["metadata"] == deep["a"]
    # Far deeper: refused from the raw bytes, before anything decodes them.
    raw = '{"query": "query { __typename }", "variables": {"input": {"metadata": '
    raw += "[" * 100_000 + "]" * 100_000 + "}}}"
    response = await client.post(
        "/graphql", content=raw, headers={**auth(api_key), "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert codes(response.json()) == ["BAD_USER_INPUT"]
    assert response.json()["errors"][0]["extensions"]["field"] == "variables.input.metadata"
    literal = "{a: " * 40 + "1" + "}" * 40
    query = f'mutation {{ sendNotification(input: {{channel: EMAIL, to: "j@x.io", subject: "s", body: "b", metadata: {literal}}}) {{ id }} }}'
    refused = await graphql(client, api_key, query)
    assert codes(refused) == ["BAD_USER_INPUT"]


async def test_depth_token_and_alias_limits(client: httpx.AsyncClient, api_key: str) -> None:
    shallow = build_schema(max_depth=3)
    deep = "query { notifications { edges { node { events { status } } } } }"
    result = await shallow.execute(deep)
    assert [e.extensions["code"] for e in result.errors or []] == ["GRAPHQL_VALIDATION_FAILED"]
    assert "exceeds maximum operation depth" in result.errors[0].message
    many_aliases = "query { " + " ".join(f"a{i}: __typename" for i in range(20)) + " }"
    assert codes(await graphql(client, api_key, many_aliases)) == ["GRAPHQL_VALIDATION_FAILED"]
    many_tokens = "query { " + " ".join(["__typename"] * 3000) + " }"
    body = await graphql(client, api_key, many_tokens)
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "token" in body["errors"][0]["message"].lower()
    deep_list = "query { __typename(x: " + "[" * 5000 + "]" * 5000 + ") }"
    assert codes(await graphql(client, api_key, deep_list)) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_get_queries_and_graphiql_are_off_by_default(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", params={"query": "{ __typename }"})
    assert response.status_code in (400, 404, 405), response.text
    assert "data" not in response.text
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert "graphiql" not in page.text.lower()


@pytest.mark.parametrize("ide", [True])
async def test_a_setting_turns_graphiql_and_get_on(ide: bool) -> None:
    from tests.conftest import make_settings, running_app

    settings = make_settings(graphql_ide=ide, graphql_allow_get=True, enable_workers=False)
    async with running_app(settings) as (_, client):
        page = await client.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "graphiql" in page.text.lower()
        response = await client.get("/graphql", params={"query": "{ __typename }"})
        assert response.json() == {"data": {"__typename": "Query"}}
        mutation = await client.get(
            "/graphql", params={"query": 'mutation { cancelNotification(id: "x") { id } }'}
        )
        assert mutation.status_code in (400, 405)


async def test_an_unexpected_error_is_internal_and_logged_without_detail(
    client: httpx.AsyncClient, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from herald.notifications.use_cases import NotificationUseCases

    async def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(NotificationUseCases, "get_notification", boom)
    body = await graphql(client, api_key, READ, id="00000000-0000-0000-0000-000000000000")
    assert codes(body) == ["INTERNAL_SERVER_ERROR"]
    assert "secret" not in str(body)


async def test_an_outage_is_unavailable(
    client: httpx.AsyncClient, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from herald.notifications.use_cases import NotificationUseCases

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionRefusedError("postgres is down")

    monkeypatch.setattr(NotificationUseCases, "get_notification", down)
    body = await graphql(client, api_key, READ, id="00000000-0000-0000-0000-000000000000")
    assert codes(body) == ["UNAVAILABLE"]
    await asyncio.sleep(0)


async def test_operations_are_counted_by_root_field_and_outcome(
    client: httpx.AsyncClient, api_key: str
) -> None:
    await graphql(client, api_key, READ, id="00000000-0000-0000-0000-000000000000")
    await graphql(client, api_key, "query { nope }")
    text = (await client.get("/metrics")).text
    assert (
        'herald_graphql_operations_total{field="notification",outcome="NOT_FOUND",type="query"}'
        in text
    )
    assert 'field="(invalid)",outcome="GRAPHQL_VALIDATION_FAILED"' in text
