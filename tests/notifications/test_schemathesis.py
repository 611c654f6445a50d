"""Property-based: generated requests are accepted or refused with a 4xx, never a 5xx.

Schemathesis builds requests for every documented operation (bodies, query and path
parameters, headers) from the OpenAPI schema; a Hypothesis strategy of our own builds
notifications near the channel rules, which random schema data rarely reaches. Both go to a
real `herald serve`.
"""

from __future__ import annotations

import asyncio
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
