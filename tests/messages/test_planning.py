"""Planning a message without I/O: rendering, the core's rules on what it renders, fallback
content kept for later, quiet hours."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time

import msgspec
import pytest

from herald.errors import ValidationFailed
from herald.messages.model import InlineRecipient, MessageInput
from herald.messages.planning import Target, addresses, inline_target, plan
from herald.messages.routing import Choices
from herald.messages.templates import TemplateVersion
from herald.notifications.model import NotificationInput

OWNER = uuid.uuid4()
NOW = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
TOKEN = "t" * 40


def _template(**channels: dict[str, str]) -> TemplateVersion:
    return TemplateVersion(
        key="t",
        version=3,
        category="account",
        critical=False,
        default_locale="en",
        locales={"en": dict(channels)},
        created_at=NOW,
    )


def _target(**extra: object) -> Target:
    values: dict[str, object] = {
        "id": "user-1",
        "addresses": addresses("a@example.com", "+447700900123", None, [TOKEN, TOKEN + "2"]),
        "locale": None,
        "timezone": "Europe/Berlin",
        "data": {},
        "choices": Choices.none(),
        "quiet_hours": None,
    }
    values.update(extra)
    return Target(**values)  # type: ignore[arg-type]


def test_a_rendered_sms_over_the_limit_is_named_after_the_template_content() -> None:
    template = _template(sms={"body": "{{ text }}"})
    item = MessageInput(template="t", recipient="user-1", data={"text": "x" * 1700})
    with pytest.raises(ValidationFailed) as caught:
        plan(OWNER, item, template, _target(), NOW)
    (problem,) = caught.value.problems
    assert problem.field == "sms.body"
    assert "1600" in problem.message


def test_bad_inline_addresses_are_named_after_the_recipient_field() -> None:
    template = _template(email={"subject": "s", "text": "b"}, push={"title": "t", "body": "b"})
    inline = InlineRecipient(email="nope", push_tokens=["short"])
    item = MessageInput(template="t", recipient=inline)
    with pytest.raises(ValidationFailed) as caught:
        plan(OWNER, item, template, inline_target(inline), NOW)
    assert {p.field for p in caught.value.problems} == {
        "recipient.email",
        "recipient.push_tokens[0]",
    }


def test_every_push_token_gets_a_notification_and_fallback_keeps_the_rest_for_later() -> None:
    template = _template(
        sms={"body": "Hi {{ name }}"}, push={"title": "T", "body": "Hi {{ name }}"}
    )
    item = MessageInput(
        template="t",
        recipient="user-1",
        data={"name": "Jo"},
        routing="fallback",
        channels=["push", "sms"],
    )
    planned = plan(OWNER, item, template, _target(), NOW)
    assert [(n.channel, n.to) for n in planned.items] == [("push", TOKEN), ("push", TOKEN + "2")]
    assert planned.row["channels"] == ["push", "sms"]
    assert planned.row["template_version"] == 3
    (pending,) = planned.row["pending"]
    assert pending["channel"] == "sms"
    kept = msgspec.convert(pending["notifications"], list[NotificationInput])
    assert [(n.to, n.body) for n in kept] == [("+447700900123", "Hi Jo")]


def test_a_missing_variable_in_a_fallback_channel_is_refused_at_acceptance() -> None:
    template = _template(push={"title": "T", "body": "ok"}, sms={"body": "{{ code }}"})
    item = MessageInput(template="t", recipient="user-1", routing="fallback")
    with pytest.raises(ValidationFailed) as caught:
        plan(OWNER, item, template, _target(), NOW)
    assert [p.field for p in caught.value.problems] == ["data.code"]


def test_quiet_hours_defer_every_notification_and_critical_ignores_them() -> None:
    template = _template(email={"subject": "s", "text": "b"})
    quiet = _target(quiet_hours=(time(9), time(11)))  # 10:00 UTC is 12:00 in Berlin: outside
    item = MessageInput(template="t", recipient="user-1")
    assert plan(OWNER, item, template, quiet, NOW).row["deferred_until"] is None
    morning = _target(quiet_hours=(time(11), time(13)))  # 12:00 Berlin: inside until 13:00
    planned = plan(OWNER, item, template, morning, NOW)
    ends = datetime(2026, 7, 1, 11, 0, tzinfo=UTC)
    assert planned.row["deferred_until"] == ends
    assert [n.send_at for n in planned.items] == [ends]
    critical = msgspec.structs.replace(template, critical=True)
    assert plan(OWNER, item, critical, morning, NOW).row["deferred_until"] is None
