"""Fixtures for GraphQL: the app in-process, and a `gql` client over its ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from gql import Client
from gql.transport.httpx import HTTPXAsyncTransport
from litestar import Litestar

from tests.conftest import make_settings, running_app
from tests.notifications.conftest import api_key, auth

EMAIL = {"channel": "EMAIL", "to": "jane@example.com", "subject": "Hi", "body": "Hello"}

NOTIFICATION_FIELDS = """
  id channel to status attempts priority reference metadata
  events { notificationId status attempt detail sequence createdAt }
"""


@pytest.fixture
async def app_client() -> AsyncIterator[tuple[Litestar, httpx.AsyncClient]]:
    async with running_app(make_settings(retry_base_seconds=0.05)) as (app, client):
        yield app, client


@pytest.fixture
def client(app_client: tuple[Litestar, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_client[1]


async def graphql(
    client: httpx.AsyncClient, bearer: str | None, query: str, **variables: Any
) -> dict[str, Any]:
    headers = auth(bearer) if bearer else {}
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code in (200, 400), response.text
    body: dict[str, Any] = response.json()
    return body


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors") or []]


def gql_client(app: Litestar, key: str) -> Client:
    """The `gql` library's client, over httpx's ASGI transport to the in-process app."""
    transport = HTTPXAsyncTransport(
        url="http://herald/graphql",
        headers=auth(key),
        transport=httpx.ASGITransport(app=app),
    )
    return Client(transport=transport, fetch_schema_from_transport=False)


__all__ = ["EMAIL", "NOTIFICATION_FIELDS", "api_key", "codes", "gql_client", "graphql"]
