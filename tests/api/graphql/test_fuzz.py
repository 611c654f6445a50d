"""hypothesis-graphql: generated queries and mutations never produce an internal error.

A sync test driving its own event loop, so hypothesis runs many examples against one app."""

from __future__ import annotations

import asyncio
from typing import Any

import graphql
import hypothesis_graphql
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes

from herald.api.graphql.schema import sdl
from tests.conftest import make_settings, running_app
from tests.notifications.conftest import auth, new_key

_NAMES = ["en", "de", "email", "sms", "push", "whatsapp", "subject", "text", "html", "body", "x"]


def _field(pair: tuple[str, Any]) -> graphql.ObjectFieldNode:
    return graphql.ObjectFieldNode(name=graphql.NameNode(value=pair[0]), value=pair[1])


# JSON arguments (template locales, preview data): objects shaped like templates, nested.
_JSON = st.recursive(
    st.one_of(
        st.sampled_from(["{{ name }}", "{% if %}", "{{ ''.__class__ }}", "", "hi"]).map(
            nodes.String
        ),
        st.integers(-5, 5).map(nodes.Int),
    ),
    lambda inner: st.lists(st.tuples(st.sampled_from(_NAMES), inner), max_size=3).map(
        lambda pairs: nodes.Object([_field(p) for p in dict(pairs).items()])
    ),
    max_leaves=12,
)
_SCALARS = {"JSON": _JSON}


def test_generated_operations_never_fail_internally() -> None:
    loop = asyncio.new_event_loop()
    app_context = running_app(make_settings(enable_workers=False))
    _, client = loop.run_until_complete(app_context.__aenter__())
    key = loop.run_until_complete(new_key("fuzz"))
    failures: list[Any] = []
    schema = sdl()

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        query=hypothesis_graphql.queries(schema, custom_scalars=_SCALARS)
        | hypothesis_graphql.mutations(schema, custom_scalars=_SCALARS)
    )
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
