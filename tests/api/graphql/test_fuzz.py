"""hypothesis-graphql: generated queries and mutations never produce an internal error.

A sync test driving its own event loop, so hypothesis runs many examples against one app."""

from __future__ import annotations

import asyncio
from typing import Any

import hypothesis_graphql
from hypothesis import HealthCheck, given, settings

from herald.api.graphql.schema import sdl
from tests.conftest import make_settings, running_app
from tests.notifications.conftest import auth, new_key


def test_generated_operations_never_fail_internally() -> None:
    loop = asyncio.new_event_loop()
    app_context = running_app(make_settings(enable_workers=False))
    _, client = loop.run_until_complete(app_context.__aenter__())
    key = loop.run_until_complete(new_key("fuzz"))
    failures: list[Any] = []
    schema = sdl()

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(query=hypothesis_graphql.queries(schema) | hypothesis_graphql.mutations(schema))
    def check(query: str) -> None:
        response = loop.run_until_complete(
            client.post("/graphql", json={"query": query}, headers=auth(key))
        )
        assert response.status_code in (200, 400), response.text
        for error in response.json().get("errors") or []:
            if error.get("extensions", {}).get("code") == "INTERNAL_SERVER_ERROR":
                failures.append((query, error))

    try:
        check()
    finally:
        loop.run_until_complete(app_context.__aexit__(None, None, None))
        loop.close()
    assert not failures, failures[:3]
