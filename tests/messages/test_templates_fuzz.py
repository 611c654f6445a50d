"""Generated template texts and preview data: saved or refused with a 4xx, rendered or
refused with a 4xx, never a 5xx (random schema data rarely reaches Jinja's syntax)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_settings, running_app
from tests.notifications.conftest import auth, new_key

_pieces = st.sampled_from(
    [
        "{{ name }}",
        "{{ name|upper }}",
        "{%",
        "%}",
        "{{",
        "}}",
        "{% if name %}",
        "{% endif %}",
        "{% for x in items %}",
        "{% endfor %}",
        "{{ x }}",
        "{{ ''.__class__ }}",
        "{{ 1/0 }}",
        "{{ name * 99999999 }}",
        "{{ items|attr('__len__') }}",
        "{{ recipient.id }}",
        "\n",
        "{# c #}",
        "{% raw %}",
        "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
        "<b>",
        "&",
        "{{ name.ljust(10**7) }}",
        "{{ range(10**6)|list }}",
        "{% set y = name ~ name %}{{ y }}",
    ]
)
_source = st.lists(st.one_of(_pieces, st.text(max_size=8)), max_size=8).map("".join)
_data = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.text(max_size=10), st.integers(), st.none()),
        "items": st.one_of(st.lists(st.integers(), max_size=4), st.text(max_size=5)),
    },
)


@pytest.mark.parametrize("channel", ["email", "sms"])
async def test_generated_templates_never_get_a_server_error(channel: str) -> None:
    key = await new_key(f"fuzz-{channel}")
    async with running_app(make_settings(enable_workers=False)) as (_, client):
        seen: list[tuple[int, int]] = []

        async def attempt(source: str, data: dict[str, Any]) -> None:
            content = (
                {"subject": "S", "html": source} if channel == "email" else {"body": source or "x"}
            )
            body = {"default_locale": "en", "locales": {"en": {channel: content}}}
            saved = await client.put("/v1/templates/fuzz", json=body, headers=auth(key))
            assert saved.status_code in (200, 422), saved.text
            shown = await client.post(
                "/v1/templates/fuzz/preview", json={"data": data}, headers=auth(key)
            )
            assert shown.status_code in (200, 404, 422), shown.text
            seen.append((saved.status_code, shown.status_code))

        cases: list[tuple[str, dict[str, Any]]] = []

        @given(source=_source, data=_data)
        @settings(
            max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def collect(source: str, data: dict[str, Any]) -> None:
            cases.append((source, data))

        collect()
        for source, data in cases:
            await attempt(source, data)
        assert {saved for saved, _ in seen} >= {200, 422}
