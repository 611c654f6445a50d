"""Routing: which channels a message uses, and the reason for each one it skips."""

from __future__ import annotations

from herald.messages.routing import Choices, Route, Skip, check_requested, route
from herald.vocabulary import SkipReason

JANE = {"email": ["jane@example.com"], "sms": ["+447700900123"], "push": ["t" * 40]}


def _route(
    template: list[str],
    addresses: dict[str, list[str]] | None = None,
    *,
    channels: dict[str, bool] | None = None,
    categories: dict[str, bool] | None = None,
    category: str | None = "account",
    critical: bool = False,
    requested: list[str] | None = None,
) -> Route:
    return route(
        template_channels=template,
        addresses=JANE if addresses is None else addresses,
        choices=Choices(channels or {}, categories or {}),
        category=category,
        critical=critical,
        requested=requested,
    )


def test_the_issue_example_email_and_push_used_sms_not_in_template() -> None:
    # whatsapp: not in the template, no address, not asked for: nothing to report
    assert _route(["email", "push"]) == Route(
        ("email", "push"), (Skip("sms", SkipReason.NOT_IN_TEMPLATE),)
    )


def test_a_channel_in_the_template_without_an_address_is_no_address() -> None:
    result = _route(["email", "whatsapp"], {"email": ["a@example.com"], "push": []})
    assert result == Route(("email",), (Skip("whatsapp", SkipReason.NO_ADDRESS),))


def test_opting_out_of_a_channel_or_the_category() -> None:
    assert _route(["email", "push"], channels={"push": False}).skipped == (
        Skip("sms", SkipReason.NOT_IN_TEMPLATE),
        Skip("push", SkipReason.OPTED_OUT),
    )
    assert _route(["email", "push"], categories={"account": False}).channels == ()
    assert _route(["email"], categories={"marketing": False}).channels == ("email",)
    # a channel turned on explicitly is allowed, as an absent one
    assert _route(["email"], channels={"email": True}).channels == ("email",)


def test_a_critical_template_ignores_opt_outs_but_not_missing_addresses() -> None:
    result = _route(
        ["email", "push", "whatsapp"],
        channels={"push": False, "email": False},
        categories={"account": False},
        critical=True,
    )
    assert result.channels == ("email", "push")
    assert Skip("whatsapp", SkipReason.NO_ADDRESS) in result.skipped


def test_requested_channels_give_the_order_and_skip_the_others() -> None:
    result = _route(["email", "sms", "push"], requested=["push", "sms"])
    assert result.channels == ("push", "sms")
    assert result.skipped == (Skip("email", SkipReason.NOT_REQUESTED),)


def test_a_requested_channel_is_reported_even_when_nothing_else_mentions_it() -> None:
    result = _route(["email"], {"email": ["a@example.com"]}, requested=["whatsapp", "email"])
    assert result == Route(("email",), (Skip("whatsapp", SkipReason.NOT_IN_TEMPLATE),))


def test_not_requested_comes_before_every_other_reason() -> None:
    result = _route(["email"], channels={"sms": False}, requested=["email"])
    assert result.skipped == (
        Skip("sms", SkipReason.NOT_REQUESTED),
        Skip("push", SkipReason.NOT_REQUESTED),
    )


def test_check_requested_names_each_bad_entry() -> None:
    assert check_requested(None) == []
    assert [p.field for p in check_requested([])] == ["channels"]
    problems = check_requested(["email", "fax", "email"])
    assert [(p.field, p.message) for p in problems] == [
        ("channels[1]", "'fax' is not a channel; use one of email, sms, push, whatsapp"),
        ("channels[2]", "names email twice"),
    ]
