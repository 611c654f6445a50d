"""Property-based: generated requests are accepted or refused with a 4xx, never a 5xx.

Schemathesis builds requests for every documented operation (bodies, query and path
parameters, headers) from the OpenAPI schema; a Hypothesis strategy of our own builds
notifications near the channel rules, which random schema data rarely reaches. Both go to a
real `herald serve`.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from datetime import UTC
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from tests.conftest import base_env
from tests.notifications.conftest import auth, new_key
from tests.support.process import HeraldProcess

pytestmark = pytest.mark.process


@pytest.fixture(scope="module")
def served() -> Iterator[HeraldProcess]:
    # Workers off: this is about the API's answers; deliveries would only add noise.
    process = HeraldProcess({**base_env(), "ENABLE_WORKERS": "false"}).start()
    yield process
    process.stop()


@pytest.fixture
def key() -> str:
    return asyncio.run(new_key("schemathesis"))


def test_no_generated_request_gets_a_server_error(served: HeraldProcess, key: str) -> None:
    schema = schemathesis.openapi.from_url(served.url + "/schema/openapi.json")
    examples = int(os.environ.get("HERALD_SCHEMATHESIS_EXAMPLES", "40"))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 5

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def no_server_error(case: Any) -> None:
            response = case.call(base_url=served.url, headers=auth(key))
            case.validate_response(response, checks=[not_a_server_error])

        no_server_error()


_text = st.text(max_size=40)
_item = st.fixed_dictionaries(
    {"channel": st.sampled_from(["email", "sms", "push", "whatsapp", "fax", ""])},
    optional={
        "to": st.one_of(
            _text,
            st.sampled_from(["jane@example.com", "+447911123456", "f" * 40 + ":APA91b" + "x" * 60]),
        ),
        "subject": st.one_of(st.none(), _text),
        "body": st.one_of(st.none(), _text, st.text(min_size=1590, max_size=1700)),
        "html": st.one_of(st.none(), _text),
        "data": st.one_of(st.none(), st.dictionaries(_text, _text, max_size=3)),
        "template": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {"name": _text, "language": _text, "parameters": st.lists(_text, max_size=3)}
            ),
        ),
        "priority": st.sampled_from(["high", "normal", "low", "urgent"]),
        "send_at": st.one_of(
            st.none(),
            st.datetimes(timezones=st.sampled_from([UTC, None])).map(lambda d: d.isoformat()),
        ),
        "reference": st.one_of(st.none(), st.text(max_size=300)),
        "metadata": st.one_of(st.none(), st.dictionaries(_text, st.integers() | _text, max_size=4)),
    },
)


_valid = st.one_of(
    st.fixed_dictionaries(
        {
            "channel": st.just("sms"),
            "to": st.just("+447911123456"),
            "body": st.text(min_size=1, max_size=60),
        },
        optional={
            "reference": st.text(max_size=255),
            "priority": st.sampled_from(["high", "normal", "low"]),
        },
    ),
    st.fixed_dictionaries(
        {
            "channel": st.just("email"),
            "to": st.just("jane@example.com"),
            "subject": st.text(min_size=1, max_size=60).filter(
                lambda s: "\r" not in s and "\n" not in s and s.strip()
            ),
            "body": st.text(min_size=1, max_size=60),
        },
        optional={"metadata": st.dictionaries(_text, _text, max_size=3)},
    ),
)


def test_generated_notifications_are_accepted_or_refused_never_a_500(
    served: HeraldProcess, key: str
) -> None:
    examples = int(os.environ.get("HERALD_SCHEMATHESIS_EXAMPLES", "40")) * 3
    outcomes: set[int] = set()
    with httpx.Client(base_url=served.url, headers=auth(key), timeout=10) as client:

        @given(items=st.lists(st.one_of(_item, _valid), min_size=1, max_size=3))
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def accepted_or_refused(items: list[dict[str, Any]]) -> None:
            single = client.post("/v1/notifications", json=items[0])
            batch = client.post("/v1/notifications/batch", json={"notifications": items})
            for response in (single, batch):
                assert response.status_code in (202, 400, 422), response.text
                outcomes.add(response.status_code)
                if response.status_code != 202:
                    problem = response.json()
                    assert problem["errors"], problem

        accepted_or_refused()
    assert {202, 422} <= outcomes  # the generator reaches both sides of the rules


# Hostile JSON: any mix of arrays and objects, nested anywhere from not at all to thousands of
# levels, wide or narrow, placed where a body, a batch item, `metadata` or `data` goes.
_leaf = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def _nested_json(draw: st.DrawFn) -> str:
    depth = draw(st.one_of(st.integers(0, 40), st.integers(0, 20_000)))
    kinds = draw(st.lists(st.sampled_from("[{"), min_size=1, max_size=4))
    width = draw(st.integers(1, 3))
    text = json.dumps(draw(_leaf))
    for level in range(depth):
        if kinds[level % len(kinds)] == "[":
            text = "[" + ", ".join([text] * (width if level < 3 else 1)) + "]"
        else:
            text = '{"k": ' + text + "}"
    return text


def _placed(nested: str, where: str, batch: bool) -> str:
    item = {"channel": "email", "to": "jane@example.com", "subject": "s", "body": "b"}
    if where == "body":
        return nested
    if where in ("metadata", "data"):
        text = json.dumps(item)[:-1] + f', "{where}": ' + nested + "}"
    else:  # the item itself
        text = nested
    return '{"notifications": [' + text + "]}" if batch else text


def test_json_of_any_nesting_and_width_is_refused_with_a_4xx_never_a_500(
    served: HeraldProcess, key: str
) -> None:
    examples = int(os.environ.get("HERALD_SCHEMATHESIS_EXAMPLES", "40")) * 2
    outcomes: set[int] = set()
    headers = {**auth(key), "Content-Type": "application/json"}
    with httpx.Client(base_url=served.url, headers=headers, timeout=10) as client:

        @given(
            nested=_nested_json(),
            where=st.sampled_from(["body", "item", "metadata", "data"]),
            batch=st.booleans(),
        )
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def never_a_server_error(nested: str, where: str, batch: bool) -> None:
            path = "/v1/notifications/batch" if batch else "/v1/notifications"
            response = client.post(path, content=_placed(nested, where, batch))
            assert response.status_code in (202, 400, 413, 422), response.text
            outcomes.add(response.status_code)
            if response.status_code != 202:
                assert response.json()["errors"], response.text

        never_a_server_error()
    assert 400 in outcomes


def test_nesting_past_the_limit_names_the_field(served: HeraldProcess, key: str) -> None:
    item = {"channel": "email", "to": "jane@example.com", "subject": "s", "body": "b"}
    at_limit = {**item, "metadata": _deep(32)}
    over = {**item, "metadata": _deep(33)}
    with httpx.Client(base_url=served.url, headers=auth(key), timeout=10) as client:
        assert client.post("/v1/notifications", json=at_limit).status_code == 202
        single = client.post("/v1/notifications", json=over)
        batch = client.post("/v1/notifications/batch", json={"notifications": [item, over]})
        bare = client.post(
            "/v1/notifications/batch",
            content="[" * 100_000 + "]" * 100_000,
            headers={"Content-Type": "application/json"},
        )
    assert single.status_code == 400, single.text
    assert single.json()["errors"] == [
        {"field": "metadata", "message": "is nested more than 32 levels deep"}
    ]
    assert batch.status_code == 400, batch.text
    assert batch.json()["errors"][0]["field"] == "notifications[1].metadata"
    assert bare.status_code == 400, bare.text
    assert bare.json()["errors"][0]["field"] == "(body)"


def _deep(levels: int) -> dict[str, Any]:
    """A metadata object `levels` containers deep, counting itself."""
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"k": value}
    return value
