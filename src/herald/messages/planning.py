"""From a message request, its template and its recipient to the notifications to accept.

No I/O: the use case loads the template and the recipient, this decides the route, renders
every channel used (so a missing variable is a 422 at acceptance, for fallback channels
too), applies quiet hours, and checks each notification with the core's own rules.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from herald.errors import FieldProblem, ValidationFailed, summary
from herald.messages.model import InlineRecipient, MessageInput
from herald.messages.quiet_hours import quiet_until
from herald.messages.routing import Choices, check_requested, check_routing, route
from herald.messages.templates import RenderedContent, TemplateVersion, channels_of, render
from herald.notifications import nesting
from herald.notifications.model import NotificationInput
from herald.notifications.validation import validate_one
from herald.vocabulary import Channel, Routing

MAX_KEY = 255
MAX_DATA_BYTES = 32 * 1024
# Where each channel's address comes from, for field names in errors.
ADDRESS_FIELD: dict[str, str] = {
    Channel.EMAIL: "email",
    Channel.SMS: "phone",
    Channel.WHATSAPP: "whatsapp",
    Channel.PUSH: "push_tokens",
}
_CONTENT = ("subject", "body", "html", "data", "template")


@dataclass(frozen=True, slots=True)
class Target:
    """Whom a message goes to: a stored recipient or inline addresses, alike."""

    id: str | None
    addresses: Mapping[str, list[str]]
    locale: str | None
    timezone: str | None
    data: Mapping[str, Any]
    choices: Choices
    quiet_hours: tuple[time, time] | None

    def for_template(self) -> dict[str, Any]:
        """The `recipient` variable templates see."""
        return {
            "id": self.id,
            "locale": self.locale,
            "timezone": self.timezone,
            "data": dict(self.data),
            "email": _first(self.addresses.get("email")),
            "phone": _first(self.addresses.get("sms")),
            "whatsapp": _first(self.addresses.get("whatsapp")),
        }


def _first(values: list[str] | None) -> str | None:
    return values[0] if values else None


def addresses(
    email: str | None, phone: str | None, whatsapp: str | None, push_tokens: list[str]
) -> dict[str, list[str]]:
    """Channel -> the recipient's addresses on it (push: every token)."""
    return {
        "email": [email] if email else [],
        "sms": [phone] if phone else [],
        "whatsapp": [whatsapp] if whatsapp else [],
        "push": list(push_tokens),
    }


def inline_target(recipient: InlineRecipient) -> Target:
    return Target(
        id=None,
        addresses=addresses(
            recipient.email, recipient.phone, recipient.whatsapp, recipient.push_tokens
        ),
        locale=recipient.locale,
        timezone=recipient.timezone,
        data=recipient.data,
        choices=Choices.none(),
        quiet_hours=None,
    )


@dataclass
class Plan:
    """One message, decided: its row and the notifications to accept now (`items`, with all
    routing; the first channel's with fallback) and later (`pending`, fallback only)."""

    message_id: uuid.UUID
    row: dict[str, Any]
    items: list[NotificationInput] = field(default_factory=list)


def check_input(item: MessageInput) -> list[FieldProblem]:
    """The message's own fields (the notifications' are checked once rendered)."""
    problems = [*check_routing(item.routing), *check_requested(item.channels)]
    if not 1 <= len(item.template) <= MAX_KEY or "\x00" in item.template:
        problems.append(FieldProblem("template", f"must be 1 to {MAX_KEY} characters, no NUL"))
    if isinstance(item.recipient, str):
        if not 1 <= len(item.recipient) <= MAX_KEY or "\x00" in item.recipient:
            problems.append(FieldProblem("recipient", f"must be 1 to {MAX_KEY} characters"))
    elif item.recipient.timezone is not None and _zone(item.recipient.timezone) is None:
        problems.append(FieldProblem("recipient.timezone", "is not an IANA time zone name"))
    if nesting.depth_exceeds(item.data):
        problems.append(FieldProblem("data", f"is nested more than {nesting.MAX_DEPTH} levels"))
    elif len(msgspec.json.encode(item.data)) > MAX_DATA_BYTES:
        problems.append(FieldProblem("data", f"is larger than {MAX_DATA_BYTES} bytes of JSON"))
    # The fields every notification of the message shares, checked by the core's rules.
    probe = NotificationInput(
        channel="email",
        to="probe@example.com",
        subject="probe",
        body="probe",
        priority=item.priority,
        send_at=item.send_at,
        reference=item.reference,
        metadata=item.metadata,
    )
    problems += validate_one(probe)
    return problems


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def plan(
    owner: uuid.UUID,
    item: MessageInput,
    template: TemplateVersion,
    target: Target,
    now: datetime,
) -> Plan:
    """Decide one message; ValidationFailed names every problem (rendering included)."""
    locale = item.locale or target.locale
    decided = route(
        template_channels=channels_of(template, locale),
        addresses=target.addresses,
        choices=target.choices,
        category=template.category,
        critical=template.critical,
        requested=item.channels,
    )
    send_at = item.send_at
    deferred_until = None
    if not template.critical and target.quiet_hours is not None:
        zone = _zone(target.timezone or "UTC") or ZoneInfo("UTC")
        at = max(send_at, now) if send_at is not None else now
        deferred_until = quiet_until(at, *target.quiet_hours, zone)
        if deferred_until is not None:
            send_at = deferred_until

    problems: list[FieldProblem] = []
    by_channel: list[tuple[str, list[NotificationInput]]] = []
    locale_used: str | None = None
    variables = target.for_template()
    for channel in decided.channels:
        try:
            content = render(template, channel, locale, item.data, variables)
        except ValidationFailed as exc:
            problems += exc.problems or [FieldProblem(channel, exc.detail)]
            continue
        locale_used = locale_used or content.locale_used
        items = []
        for index, address in enumerate(target.addresses[channel]):
            notification = _notification(channel, address, content, item, send_at)
            for problem in validate_one(notification):
                problems.append(_renamed(problem, channel, index))
            items.append(notification)
        by_channel.append((channel, items))
    if problems:
        problems = _unique(problems)
        raise ValidationFailed(summary(problems), problems=problems)

    message_id = uuid.uuid4()
    fallback = item.routing == Routing.FALLBACK
    now_items = [n for _, found in by_channel[:1] for n in found] if fallback else None
    pending = by_channel[1:] if fallback else []
    row = {
        "id": message_id,
        "api_key_id": owner,
        "template_key": template.key,
        "template_version": template.version,
        "recipient_id": target.id,
        "locale": locale_used,
        "routing": item.routing,
        "channels": list(decided.channels),
        "skipped": [{"channel": s.channel, "reason": str(s.reason)} for s in decided.skipped],
        "pending": [
            {"channel": channel, "notifications": msgspec.to_builtins(found)}
            for channel, found in pending
        ],
        "deferred_until": deferred_until,
        "send_at": send_at,
        "priority": item.priority,
        "reference": item.reference,
        "metadata": item.metadata,
        "created_at": now,
        "updated_at": now,
    }
    items = now_items if now_items is not None else [n for _, found in by_channel for n in found]
    return Plan(message_id, row, items)


def _notification(
    channel: str, to: str, content: RenderedContent, item: MessageInput, send_at: datetime | None
) -> NotificationInput:
    return NotificationInput(
        channel=channel,
        to=to,
        subject=content.subject,
        body=content.body,
        html=content.html,
        data=content.data,
        template=content.template,
        priority=item.priority,
        send_at=send_at,
        reference=item.reference,
        metadata=item.metadata,
    )


def _renamed(problem: FieldProblem, channel: str, index: int) -> FieldProblem:
    """A rendered notification's problem, named after what the client wrote: the template's
    content (`email.subject`) or the recipient's address (`recipient.phone`)."""
    name = problem.field.split(".")[0]
    if name == "to":
        address = ADDRESS_FIELD[channel]
        suffix = f"[{index}]" if channel == "push" else ""
        return FieldProblem(f"recipient.{address}{suffix}", problem.message)
    if name in _CONTENT:
        return FieldProblem(f"{channel}.{problem.field}", f"(rendered) {problem.message}")
    return problem


def _unique(problems: list[FieldProblem]) -> list[FieldProblem]:
    seen: dict[tuple[str, str], FieldProblem] = {}
    for problem in problems:
        seen.setdefault((problem.field, problem.message), problem)
    return list(seen.values())
