"""Which channels a message takes, and why it skips the others: pure functions, no I/O.

A channel is *considered* when the template has it (in the locale picked), the recipient
has an address for it, or the request names it; a channel none of these mention is not
reported at all. Each considered channel is either used or skipped with the first reason
that applies, checked in this order (`herald.vocabulary.SkipReason`):

1. `not_requested`: the request's `channels` does not name it;
2. `not_in_template`: the template has no content for it;
3. `no_address`: the recipient has no address for it (for push: no token);
4. `opted_out`: the recipient turned the channel off;
5. `category_opted_out`: the recipient turned the template's category off.

A `critical` template ignores 4 and 5 (and quiet hours, which defer rather than skip: see
`quiet_hours`). The channels used come in the request's `channels` order, or Herald's channel
order (email, sms, push, whatsapp) without one. With `all` routing every one is sent at
once; with `fallback` only the first, and the next when the previous failed for good.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from herald.errors import FieldProblem
from herald.vocabulary import CHANNELS, ROUTINGS, SkipReason


@dataclass(frozen=True, slots=True)
class Skip:
    channel: str
    reason: SkipReason


@dataclass(frozen=True, slots=True)
class Route:
    """The channels a message uses, in order, and the ones it skips."""

    channels: tuple[str, ...]
    skipped: tuple[Skip, ...]


@dataclass(frozen=True, slots=True)
class Choices:
    """What the recipient chose: channels and categories turned off (absent means allowed)."""

    channels: Mapping[str, bool]
    categories: Mapping[str, bool]

    @classmethod
    def none(cls) -> Choices:
        return cls({}, {})


def route(
    *,
    template_channels: Sequence[str],
    addresses: Mapping[str, Sequence[str]],
    choices: Choices,
    category: str | None,
    critical: bool,
    requested: Sequence[str] | None,
) -> Route:
    """The route of one message to one recipient (`addresses`: channel -> its addresses)."""
    in_template = set(template_channels)
    reachable = {channel for channel, found in addresses.items() if found}
    named = set(requested) if requested is not None else set()
    order = list(requested) if requested is not None else list(CHANNELS)
    order += [c for c in CHANNELS if c not in order]

    used: list[str] = []
    skipped: list[Skip] = []
    for channel in order:
        if channel not in in_template | reachable | named:
            continue
        reason = _reason(channel, in_template, reachable, choices, category, critical, requested)
        if reason is None:
            used.append(channel)
        else:
            skipped.append(Skip(channel, reason))
    return Route(tuple(used), tuple(skipped))


def _reason(
    channel: str,
    in_template: set[str],
    reachable: set[str],
    choices: Choices,
    category: str | None,
    critical: bool,
    requested: Sequence[str] | None,
) -> SkipReason | None:
    if requested is not None and channel not in requested:
        return SkipReason.NOT_REQUESTED
    if channel not in in_template:
        return SkipReason.NOT_IN_TEMPLATE
    if channel not in reachable:
        return SkipReason.NO_ADDRESS
    if critical:
        return None
    if choices.channels.get(channel, True) is False:
        return SkipReason.OPTED_OUT
    if category is not None and choices.categories.get(category, True) is False:
        return SkipReason.CATEGORY_OPTED_OUT
    return None


def check_requested(channels: Sequence[str] | None, field: str = "channels") -> list[FieldProblem]:
    """`channels` of a message: known channels, each once, at least one."""
    if channels is None:
        return []
    problems: list[FieldProblem] = []
    if not channels:
        problems.append(FieldProblem(field, "must name at least one channel (or be left out)"))
    seen: set[str] = set()
    for index, channel in enumerate(channels):
        if channel not in CHANNELS:
            problems.append(
                FieldProblem(
                    f"{field}[{index}]",
                    f"{channel[:40]!r} is not a channel; use one of {', '.join(CHANNELS)}",
                )
            )
        elif channel in seen:
            problems.append(FieldProblem(f"{field}[{index}]", f"names {channel} twice"))
        seen.add(channel)
    return problems


def check_routing(routing: str, field: str = "routing") -> list[FieldProblem]:
    if routing in ROUTINGS:
        return []
    return [FieldProblem(field, f"{routing[:40]!r} is not a routing; use all or fallback")]
