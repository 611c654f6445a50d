"""The templates seam the messages layer builds on: save, load the current version, pick the
locale, render in the sandbox."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from herald.errors import ValidationFailed
from herald.messages import template_store
from herald.messages.template_input import TemplateInput, stored_locales, validate_template
from herald.messages.templates import (
    TemplateVersion,
    channels_of,
    load_current,
    load_version,
    render,
)
from tests.messages.conftest import key_id

WELCOME: dict[str, Any] = {
    "category": "account",
    "critical": False,
    "default_locale": "en",
    "locales": {
        "en": {
            "email": {
                "subject": "Welcome, {{ name }}",
                "text": "Hi {{ name }}",
                "html": "<p>Hi <b>{{ name }}</b></p>",
            },
            "push": {"title": "Welcome", "body": "Hi {{ name }}", "data": {"who": "{{ name }}"}},
        },
        "de": {
            "email": {"subject": "Willkommen, {{ name }}", "text": "Hallo {{ name }}"},
            "sms": {"body": "Hallo {{ recipient.id }}"},
        },
    },
}


async def save(engine: AsyncEngine, owner: uuid.UUID, body: dict[str, Any]) -> TemplateVersion:
    item = msgspec.convert(body, TemplateInput)
    assert validate_template("welcome", item) == []
    async with engine.begin() as connection:
        return await template_store.save_version(
            connection,
            owner,
            "welcome",
            category=item.category,
            critical=item.critical,
            default_locale=item.default_locale,
            locales=stored_locales(item),
        )


async def test_every_save_is_a_new_version_and_load_current_reads_the_latest(
    engine: AsyncEngine,
) -> None:
    owner, other = await key_id(engine, "a"), await key_id(engine, "b")
    first = await save(engine, owner, WELCOME)
    second = await save(engine, owner, {**WELCOME, "critical": True})
    assert (first.version, second.version) == (1, 2)
    async with engine.connect() as connection:
        current = await load_current(connection, owner, "welcome")
        old = await load_version(connection, owner, "welcome", 1)
        assert await load_current(connection, other, "welcome") is None
    assert current is not None
    assert (current.version, current.critical) == (2, True)
    assert old is not None
    assert (old.critical, old.locales) == (False, first.locales)


async def test_render_picks_the_locale_autoescapes_only_html_and_renders_push_data(
    engine: AsyncEngine,
) -> None:
    template = await save(engine, await key_id(engine, "a"), WELCOME)
    data = {"name": "<Jane>"}
    email = render(template, "email", "en-GB", data, None)
    assert email.locale_used == "en"
    assert (email.subject, email.body) == ("Welcome, <Jane>", "Hi <Jane>")
    assert email.html == "<p>Hi <b>&lt;Jane&gt;</b></p>"
    push = render(template, "push", None, data, None)
    assert (push.subject, push.body, push.data) == ("Welcome", "Hi <Jane>", {"who": "<Jane>"})
    german = render(template, "sms", "DE-at", data, {"id": "user-42"})
    assert (german.locale_used, german.body) == ("de", "Hallo user-42")
    assert channels_of(template, "de-AT") == ["email", "sms"]
    assert channels_of(template, "fr") == ["email", "push"]


async def test_a_missing_variable_is_a_validation_error_naming_it(engine: AsyncEngine) -> None:
    template = await save(engine, await key_id(engine, "a"), WELCOME)
    with pytest.raises(ValidationFailed) as caught:
        render(template, "email", "en", {}, None)
    problem = caught.value.problems[0]
    assert problem.field == "data.name"
    assert problem.message == "undefined variable 'name' in email.subject"


def test_a_syntax_error_is_refused_with_its_field_and_line() -> None:
    body = {
        "default_locale": "en",
        "locales": {"en": {"sms": {"body": "Hello\n{{ name }\n"}}},
    }
    problems = validate_template("welcome", msgspec.convert(body, TemplateInput))
    assert [(p.field, p.message.split(":")[0]) for p in problems] == [
        ("locales.en.sms.body", "line 2")
    ]


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ name['__class__'] }}",
        "{{ cycler.__init__.__globals__ }}",
    ],
)
def test_template_injection_is_refused_at_save(source: str) -> None:
    body = {"default_locale": "en", "locales": {"en": {"sms": {"body": source}}}}
    problems = validate_template("t", msgspec.convert(body, TemplateInput))
    assert len(problems) == 1
    assert "not allowed by the template sandbox" in problems[0].message


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{{ name|attr('__class__') }}", "sandbox"),
        ("{{ 'x' * 100000000 }}", "'*'"),
        ("{% for a in range(9999) %}{% for b in range(9999) %}{% endfor %}{% endfor %}", "range"),
        ("{{ 'x'.ljust(1000000000) }}", "width"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
    ],
)
def test_what_the_sandbox_refuses_at_render_is_a_validation_error(source: str, reason: str) -> None:
    template = TemplateVersion(
        key="t",
        version=1,
        category=None,
        critical=False,
        default_locale="en",
        locales={"en": {"sms": {"body": source}}},
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    with pytest.raises(ValidationFailed) as caught:
        render(template, "sms", None, {"name": "jane"}, None)
    assert reason in caught.value.problems[0].message


def test_a_nul_character_is_refused_naming_the_field() -> None:
    body = {"default_locale": "en", "locales": {"en": {"push": {"data": {"k\x00": "v"}}}}}
    problems = validate_template("t", msgspec.convert(body, TemplateInput))
    assert [(p.field, p.message) for p in problems] == [
        ("locales.en.push.data.k\x00", "must not contain NUL characters")
    ]
