"""The channel rules a notification must meet, reported all at once, field by field.

The same rules whatever the interface: every use case that takes a `NotificationInput`
checks it here. The vocabulary comes from `herald.vocabulary`; the limits are stated here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from herald.errors import FieldProblem
from herald.notifications import addresses, nesting
from herald.notifications.model import NotificationInput
from herald.vocabulary import CHANNELS, PRIORITIES, STATUSES

MAX_BATCH = 1000
SMS_MAX_CHARS = 1600
WHATSAPP_MAX_CHARS = 4096
EMAIL_MAX_BODY_CHARS = 512 * 1024
PUSH_MAX_DATA_BYTES = 4096
METADATA_MAX_BYTES = 4096
MAX_REFERENCE = 255
MAX_SCHEDULE_AHEAD = timedelta(days=365)

_EMAIL = re.compile(addresses.EMAIL)
_E164 = re.compile(addresses.E164)
_FCM_TOKEN = re.compile(addresses.FCM_TOKEN)


class FieldErrors:
    """Collects field problems, prefixing fields with the batch index."""

    def __init__(self) -> None:
        self.items: list[FieldProblem] = []

    def add(self, field: str, message: str, index: int | None = None) -> None:
        if index is not None:
            field = f"notifications[{index}].{field}"
        self.items.append(FieldProblem(field, message, index))


def _has_line_break(text: str) -> bool:
    return "\r" in text or "\n" in text


def email_problem(address: str) -> str | None:
    """What is wrong with an email address, or None (notifications and recipients alike)."""
    if not _EMAIL.match(address) or len(address) > 254:
        return f"{address[:80]!r} is not a valid email address"
    return None


def phone_problem(number: str) -> str | None:
    """What is wrong with an SMS or WhatsApp number, or None."""
    if not _E164.match(number):
        return f"{number[:40]!r} is not an E.164 phone number (like +447911123456)"
    return None


def push_token_problem(token: str) -> str | None:
    """What is wrong with an FCM registration token, or None (never quoting it)."""
    if not _FCM_TOKEN.match(token):
        return "is not an FCM registration token (32+ characters of A-Z a-z 0-9 _ - :)"
    return None


def _check_address(item: NotificationInput, add: Any) -> None:
    problem = None
    if item.channel == "email":
        problem = email_problem(item.to)
    elif item.channel in ("sms", "whatsapp"):
        problem = phone_problem(item.to)
    elif item.channel == "push":
        problem = push_token_problem(item.to)
    if problem is not None:
        add("to", problem)


def _check_content(item: NotificationInput, add: Any) -> None:
    channel = item.channel
    if item.subject is not None and channel not in ("email", "push"):
        add("subject", f"is only for email and push, not {channel}")
    if item.html is not None and channel != "email":
        add("html", f"is only for email, not {channel}")
    if item.data is not None and channel != "push":
        add("data", f"is only for push, not {channel}")
    if item.template is not None and channel != "whatsapp":
        add("template", f"is only for whatsapp, not {channel}")

    if channel == "email":
        if not item.subject or not item.subject.strip():
            add("subject", "is required for email")
        elif _has_line_break(item.subject):
            add("subject", "must not contain CR or LF characters")
        elif len(item.subject) > 998:
            add("subject", "is longer than 998 characters")
        if not item.body and not item.html:
            add("body", "email needs a body, an html part, or both")
        for name in ("body", "html"):
            value = getattr(item, name)
            if value is not None and len(value) > EMAIL_MAX_BODY_CHARS:
                add(name, f"is longer than {EMAIL_MAX_BODY_CHARS} characters")
    elif channel == "sms":
        if not item.body:
            add("body", "is required for sms")
        elif len(item.body) > SMS_MAX_CHARS:
            add("body", f"is {len(item.body)} characters; sms allows {SMS_MAX_CHARS}")
    elif channel == "push":
        if item.subject is not None and _has_line_break(item.subject):
            add("subject", "must not contain CR or LF characters")
        if not item.body and not item.data:
            add("body", "push needs a body, a data payload, or both")
        if item.data is not None and len(msgspec.json.encode(item.data)) > PUSH_MAX_DATA_BYTES:
            add("data", f"is larger than FCM's {PUSH_MAX_DATA_BYTES} bytes")
    elif channel == "whatsapp":
        if (item.body is None) == (item.template is None):
            add("body", "whatsapp needs exactly one of body and template")
        elif item.body is not None and len(item.body) > WHATSAPP_MAX_CHARS:
            add("body", f"is longer than {WHATSAPP_MAX_CHARS} characters")
        if item.template is not None and not item.template.name.strip():
            add("template.name", "must not be empty")


def has_nul(value: Any) -> bool:
    """Postgres cannot store U+0000 in text or JSONB: refuse it instead of failing later."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return False


_TEXT_FIELDS = ("to", "subject", "body", "html", "reference", "data", "metadata")


def validate_item(item: NotificationInput, errors: FieldErrors, index: int | None = None) -> None:
    def add(field: str, message: str) -> None:
        errors.add(field, message, index)

    if item.metadata is not None and nesting.depth_exceeds(item.metadata):
        add("metadata", f"is nested more than {nesting.MAX_DEPTH} levels deep")
        return
    nul_fields = [name for name in _TEXT_FIELDS if has_nul(getattr(item, name))]
    if item.template is not None and has_nul(msgspec.to_builtins(item.template)):
        nul_fields.append("template")
    if nul_fields:
        for name in nul_fields:
            add(name, "must not contain NUL (U+0000) characters")
        return

    if item.channel not in CHANNELS:
        add("channel", f"{item.channel[:40]!r} is not a channel; use one of {', '.join(CHANNELS)}")
        return
    _check_address(item, add)
    _check_content(item, add)
    if item.priority not in PRIORITIES:
        add("priority", f"{item.priority[:40]!r} is not a priority; use high, normal or low")
    if item.send_at is not None:
        if item.send_at.tzinfo is None:
            add("send_at", "needs a UTC offset (RFC 3339), e.g. 2030-01-01T09:00:00Z")
        elif item.send_at - datetime.now(UTC) > MAX_SCHEDULE_AHEAD:
            add("send_at", "is more than 365 days ahead")
    if item.reference is not None and len(item.reference) > MAX_REFERENCE:
        add("reference", f"is longer than {MAX_REFERENCE} characters")
    if item.metadata is not None and len(msgspec.json.encode(item.metadata)) > METADATA_MAX_BYTES:
        add("metadata", f"is larger than {METADATA_MAX_BYTES} bytes of JSON")


def validate_batch(items: list[NotificationInput]) -> list[FieldProblem]:
    errors = FieldErrors()
    if not items:
        errors.add("notifications", "must hold at least one notification")
    elif len(items) > MAX_BATCH:
        errors.add("notifications", f"holds {len(items)} notifications; the limit is {MAX_BATCH}")
    else:
        for index, item in enumerate(items):
            validate_item(item, errors, index)
    return errors.items


def validate_one(item: NotificationInput) -> list[FieldProblem]:
    errors = FieldErrors()
    validate_item(item, errors)
    return errors.items


MAX_PAGE = 200


def check_filters(
    status: str | None, channel: str | None, reference: str | None, limit: int
) -> list[FieldProblem]:
    """The list's filters: the same limits whatever the interface."""
    problems: list[FieldProblem] = []
    if status is not None and status not in STATUSES:
        problems.append(
            FieldProblem("status", f"is not a status; use one of {', '.join(STATUSES)}")
        )
    if channel is not None and channel not in CHANNELS:
        problems.append(
            FieldProblem("channel", f"is not a channel; use one of {', '.join(CHANNELS)}")
        )
    if reference is not None and (len(reference) > MAX_REFERENCE or "\x00" in reference):
        problems.append(
            FieldProblem("reference", f"must be at most {MAX_REFERENCE} characters, no NUL")
        )
    if not 1 <= limit <= MAX_PAGE:
        problems.append(FieldProblem("limit", f"must be between 1 and {MAX_PAGE}"))
    return problems
