"""A client's recipients as the domain sees them, and how messages read them.

This module is the seam the other `messages` modules build on: `Recipient`, `Preferences`,
`QuietHours` and `load_recipients`. Writes (upsert, push tokens, preferences, erasure) are
`herald.messages.recipient_store`'s; the rules a recipient must meet are
`herald.messages.recipient_rules`'. Recipients are scoped by API key: a read names the key,
and another key's recipient is simply not there.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local to the recipient's timezone; `end` may be before `start` (over midnight)."""

    start: time
    end: time


@dataclass(frozen=True, slots=True)
class Preferences:
    """Opt-outs: a channel or category mapped to False is opted out; absent means allowed."""

    channels: dict[str, bool] = field(default_factory=dict)
    categories: dict[str, bool] = field(default_factory=dict)
    quiet_hours: QuietHours | None = None

    def allows_channel(self, channel: str) -> bool:
        return self.channels.get(channel, True)

    def allows_category(self, category: str | None) -> bool:
        return category is None or self.categories.get(category, True)

    def to_json(self) -> dict[str, Any]:
        """The wire and storage shape: times as "HH:MM"."""
        quiet = self.quiet_hours
        return {
            "channels": dict(self.channels),
            "categories": dict(self.categories),
            "quiet_hours": None
            if quiet is None
            else {"start": quiet.start.strftime("%H:%M"), "end": quiet.end.strftime("%H:%M")},
        }

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> Preferences:
        """From the stored shape (already validated when it was saved)."""
        quiet = stored.get("quiet_hours")
        return cls(
            channels=dict(stored.get("channels") or {}),
            categories=dict(stored.get("categories") or {}),
            quiet_hours=None
            if not quiet
            else QuietHours(time.fromisoformat(quiet["start"]), time.fromisoformat(quiet["end"])),
        )


@dataclass(frozen=True, slots=True)
class Recipient:
    """A recipient of one API key, by the client's own id (1..255 characters)."""

    id: str
    email: str | None
    phone: str | None
    whatsapp: str | None
    locale: str | None
    timezone: str | None  # an IANA name, checked with zoneinfo when saved
    data: dict[str, Any]  # small custom object (size-limited)
    push_tokens: list[str]
    preferences: Preferences
    created_at: datetime
    updated_at: datetime


# One round trip: the rows with their tokens (oldest first) as an array.
_LOAD = text(
    """
    SELECT r.id, r.email, r.phone, r.whatsapp, r.locale, r.timezone, r.data, r.preferences,
           r.created_at, r.updated_at,
           coalesce((SELECT array_agg(t.token ORDER BY t.created_at, t.token)
                       FROM recipient_push_tokens t
                      WHERE t.api_key_id = r.api_key_id AND t.recipient_id = r.id),
                    '{}') AS push_tokens
      FROM recipients r
     WHERE r.api_key_id = :api_key_id AND r.id = ANY(:ids)
    """
)


def to_domain(row: Row[Any]) -> Recipient:
    return Recipient(
        id=row.id,
        email=row.email,
        phone=row.phone,
        whatsapp=row.whatsapp,
        locale=row.locale,
        timezone=row.timezone,
        data=dict(row.data or {}),
        push_tokens=list(row.push_tokens),
        preferences=Preferences.from_json(row.preferences or {}),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def load_recipients(
    conn: AsyncConnection, api_key_id: uuid.UUID, ids: Sequence[str]
) -> dict[str, Recipient]:
    """The recipients of `api_key_id` among `ids`, by id; ids not found are absent."""
    if not ids:
        return {}
    result = await conn.execute(_LOAD, {"api_key_id": api_key_id, "ids": list(set(ids))})
    return {row.id: to_domain(row) for row in result}
