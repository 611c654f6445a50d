"""Recipients, their preferences and the inputs that change them, as GraphQL types.

The inputs convert to the domain's structs (`herald.messages.recipient_input`); the rules are
the use cases', the same as over REST and gRPC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from herald.api.graphql.types.inputs import convert
from herald.api.graphql.types.scalars import JSON
from herald.errors import FieldProblem, InvalidInput
from herald.messages import recipient_input
from herald.messages import recipients as domain
from herald.notifications import nesting


@strawberry.type(description="Local times HH:MM in the recipient's timezone.")
class QuietHours:
    start: str
    end: str


@strawberry.type(description="Opt-outs: false opts out; a channel or category absent is allowed.")
class Preferences:
    channels: JSON = strawberry.field(description="Channel -> allowed (an object of booleans).")
    categories: JSON = strawberry.field(description="Category -> allowed.")
    quiet_hours: QuietHours | None

    @classmethod
    def from_domain(cls, preferences: domain.Preferences) -> Preferences:
        stored = preferences.to_json()
        quiet = stored["quiet_hours"]
        return cls(
            channels=JSON(stored["channels"]),
            categories=JSON(stored["categories"]),
            quiet_hours=None
            if quiet is None
            else QuietHours(start=quiet["start"], end=quiet["end"]),
        )


@strawberry.type(description="One of your recipients, by your own id.")
class Recipient:
    id: str
    email: str | None
    phone: str | None
    whatsapp: str | None
    locale: str | None
    timezone: str | None
    data: JSON
    push_tokens: list[str]
    preferences: Preferences
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_domain(cls, recipient: domain.Recipient) -> Recipient:
        return cls(
            id=recipient.id,
            email=recipient.email,
            phone=recipient.phone,
            whatsapp=recipient.whatsapp,
            locale=recipient.locale,
            timezone=recipient.timezone,
            data=JSON(recipient.data),
            push_tokens=recipient.push_tokens,
            preferences=Preferences.from_domain(recipient.preferences),
            created_at=recipient.created_at,
            updated_at=recipient.updated_at,
        )


def _shallow(value: Any, path: str) -> None:
    if nesting.depth_exceeds(value):
        message = f"is nested more than {nesting.MAX_DEPTH} levels deep"
        raise InvalidInput(f"{path} {message}", problems=[FieldProblem(path, message)])


@strawberry.input(description="A recipient as a whole: a field left out is cleared.")
class RecipientInput:
    email: str | None = None
    phone: str | None = None
    whatsapp: str | None = None
    locale: str | None = None
    timezone: str | None = None
    data: JSON | None = strawberry.field(
        default=None, description="Your own JSON object (at most 4 KiB)."
    )

    def to_domain(self, field: str) -> recipient_input.RecipientInput:
        _shallow(self.data, f"{field}.data")
        raw = {
            name: getattr(self, name) for name in recipient_input.RecipientInput.__struct_fields__
        }
        return convert(raw, recipient_input.RecipientInput, field)


@strawberry.input
class QuietHoursInput:
    start: str
    end: str


@strawberry.input(description="The preferences as a whole (they replace the stored ones).")
class PreferencesInput:
    channels: JSON | None = strawberry.field(default=None, description="Channel -> allowed.")
    categories: JSON | None = strawberry.field(default=None, description="Category -> allowed.")
    quiet_hours: QuietHoursInput | None = None

    def to_domain(self, field: str) -> recipient_input.PreferencesInput:
        _shallow(self.channels, f"{field}.channels")
        _shallow(self.categories, f"{field}.categories")
        quiet = self.quiet_hours
        raw = {
            "channels": self.channels or {},
            "categories": self.categories or {},
            "quiet_hours": None if quiet is None else {"start": quiet.start, "end": quiet.end},
        }
        return convert(raw, recipient_input.PreferencesInput, field)
