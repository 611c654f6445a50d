"""What a client sends about a recipient, and the rules it must meet, reported field by field.

The same rules whatever the interface (REST, GraphQL, gRPC decode into these structs and the
use cases check them here). Addresses are checked exactly as a notification's `to` is
(`herald.notifications.validation`); the limits are stated here.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import time
from typing import Annotated, Any

import msgspec

from herald.errors import FieldProblem
from herald.messages.recipients import Preferences, QuietHours
from herald.notifications import addresses, nesting
from herald.notifications.validation import (
    email_problem,
    has_nul,
    phone_problem,
    push_token_problem,
)
from herald.vocabulary import CHANNELS

MAX_ID = 255
# The client's own id: URL-safe without escaping, so it reads the same in every interface.
RECIPIENT_ID = r"^[A-Za-z0-9._~:@+=-]{1,255}$"
# BCP 47-like: a language, then subtags ("de", "de-AT", "zh-Hant-TW"); "_" read as "-".
LOCALE = r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8}){0,4}$"
MAX_LOCALE = 35
TIMEZONE = r"^[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+){0,2}$"
MAX_TIMEZONE = 64
DATA_MAX_BYTES = 4096
CATEGORY = r"^[A-Za-z0-9_.:-]{1,64}$"
MAX_CATEGORIES = 100
CLOCK = r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]$"
# A recipient keeps its newest MAX_PUSH_TOKENS tokens; adding one more forgets the oldest.
MAX_PUSH_TOKENS = 20

_RECIPIENT_ID = re.compile(RECIPIENT_ID)
_LOCALE = re.compile(LOCALE)
_TIMEZONE = re.compile(TIMEZONE)
_CATEGORY = re.compile(CATEGORY)
_CLOCK = re.compile(CLOCK)


def _meta(description: str, **extra: Any) -> Any:
    """Field text (and rules as schema text only: a broken rule is a 422, not a 400)."""
    schema: dict[str, Any] = {"description": description, **extra}
    return msgspec.Meta(description=description, extra_json_schema=schema)


class RecipientInput(msgspec.Struct, forbid_unknown_fields=True):
    """A recipient as a whole (PUT replaces it: a field left out is cleared). Push tokens and
    preferences are sub-resources and are kept."""

    email: Annotated[str | None, _meta("Email address.", examples=["jane@example.com"])] = None
    phone: Annotated[str | None, _meta("E.164 number for SMS.", pattern=addresses.E164)] = None
    whatsapp: Annotated[str | None, _meta("E.164 number for WhatsApp.", pattern=addresses.E164)] = (
        None
    )
    locale: Annotated[
        str | None, _meta("BCP 47 language tag (de, de-AT).", maxLength=MAX_LOCALE)
    ] = None
    timezone: Annotated[
        str | None, _meta("IANA timezone (Europe/Berlin); quiet hours are in it.")
    ] = None
    data: Annotated[
        dict[str, Any] | None,
        _meta(f"Your own JSON object (at most {DATA_MAX_BYTES} bytes), for templates."),
    ] = None


class QuietHoursInput(msgspec.Struct, forbid_unknown_fields=True):
    """Local times "HH:MM" in the recipient's timezone; `end` before `start` spans midnight."""

    start: Annotated[str, _meta("Start, HH:MM.", pattern=CLOCK, examples=["22:00"])]
    end: Annotated[str, _meta("End, HH:MM.", pattern=CLOCK, examples=["07:00"])]


class PreferencesInput(msgspec.Struct, forbid_unknown_fields=True):
    """Opt-outs: `false` opts out of a channel or category; absent (or `true`) allows it."""

    channels: Annotated[
        dict[str, bool], _meta("Channel -> allowed.", propertyNames={"enum": list(CHANNELS)})
    ] = {}
    categories: Annotated[
        dict[str, bool], _meta("Template category -> allowed.", maxProperties=MAX_CATEGORIES)
    ] = {}
    quiet_hours: Annotated[
        QuietHoursInput | None, _meta("Non-critical messages wait until their end.")
    ] = None


def recipient_id_problem(recipient_id: str) -> str | None:
    if not _RECIPIENT_ID.match(recipient_id):
        return f"must be 1 to {MAX_ID} characters of A-Z a-z 0-9 . _ ~ : @ + = -"
    return None


def timezone_problem(name: str) -> str | None:
    if len(name) <= MAX_TIMEZONE and _TIMEZONE.match(name):
        try:
            zoneinfo.ZoneInfo(name)  # cached per name by zoneinfo after the first read
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            pass
        else:
            return None
    return f"{name[:64]!r} is not an IANA timezone (like Europe/Berlin)"


def check_recipient(recipient_id: str, item: RecipientInput) -> list[FieldProblem]:
    """Every problem of a recipient at once; an empty list when it is fine."""
    problems: list[FieldProblem] = []

    def add(field: str, problem: str | None) -> None:
        if problem is not None:
            problems.append(FieldProblem(field, problem))

    add("recipient_id", recipient_id_problem(recipient_id))
    texts = ("email", "phone", "whatsapp", "locale", "timezone")
    nul = [name for name in (*texts, "data") if has_nul(getattr(item, name))]
    if nul:
        for name in nul:
            add(name, "must not contain NUL (U+0000) characters")
        return problems
    if item.email is not None:
        add("email", email_problem(item.email))
    for name in ("phone", "whatsapp"):
        number = getattr(item, name)
        if number is not None:
            add(name, phone_problem(number))
    locale = item.locale
    if locale is not None and (len(locale) > MAX_LOCALE or not _LOCALE.match(locale)):
        add("locale", f"{locale[:40]!r} is not a language tag (like de or de-AT)")
    if item.timezone is not None:
        add("timezone", timezone_problem(item.timezone))
    if item.data is not None:
        if nesting.depth_exceeds(item.data):
            add("data", f"is nested more than {nesting.MAX_DEPTH} levels deep")
        elif len(msgspec.json.encode(item.data)) > DATA_MAX_BYTES:
            add("data", f"is larger than {DATA_MAX_BYTES} bytes of JSON")
    return problems


def check_push_token(token: str) -> list[FieldProblem]:
    problem = "must not contain NUL (U+0000) characters" if has_nul(token) else None
    problem = problem or push_token_problem(token)
    return [] if problem is None else [FieldProblem("token", problem)]


def check_preferences(item: PreferencesInput) -> tuple[Preferences | None, list[FieldProblem]]:
    """The preferences, or every problem of them."""
    problems: list[FieldProblem] = []
    for channel in item.channels:
        if channel not in CHANNELS:
            problems.append(
                FieldProblem(
                    f"channels.{channel[:40]}",
                    f"is not a channel; use one of {', '.join(CHANNELS)}",
                )
            )
    if len(item.categories) > MAX_CATEGORIES:
        problems.append(FieldProblem("categories", f"holds more than {MAX_CATEGORIES}"))
    else:
        for category in item.categories:
            if not _CATEGORY.match(category):
                problems.append(
                    FieldProblem(
                        f"categories.{category[:40]!r}",
                        "must be 1 to 64 characters of A-Z a-z 0-9 _ . : -",
                    )
                )
    quiet = item.quiet_hours
    if quiet is not None:
        for name in ("start", "end"):
            if not _CLOCK.match(getattr(quiet, name)):
                problems.append(
                    FieldProblem(f"quiet_hours.{name}", "must be a time HH:MM (00:00 to 23:59)")
                )
        if not problems and quiet.start == quiet.end:
            problems.append(FieldProblem("quiet_hours.end", "must differ from start"))
    if problems:
        return None, problems
    return (
        Preferences(
            channels=dict(item.channels),
            categories=dict(item.categories),
            quiet_hours=None
            if quiet is None
            else QuietHours(time.fromisoformat(quiet.start), time.fromisoformat(quiet.end)),
        ),
        [],
    )


def preferences_input(preferences: Preferences) -> PreferencesInput:
    """The wire shape of stored preferences (what GET answers, as PUT takes it)."""
    stored = preferences.to_json()
    quiet = stored["quiet_hours"]
    return PreferencesInput(
        channels=stored["channels"],
        categories=stored["categories"],
        quiet_hours=None if quiet is None else QuietHoursInput(quiet["start"], quiet["end"]),
    )
