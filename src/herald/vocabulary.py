"""Herald's vocabulary: channels, statuses, priorities, routings and skip reasons, stated once.

Everything else derives from these enums: the wire schemas of every interface, the SQL check
constraints, the delivery queues (one per channel), metric labels and the dashboard. A leaf
module with no Herald imports, because the database models, the queue, the channels and the
domain all need it.
"""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """How a notification travels; each channel is also the name of its delivery queue."""

    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    WHATSAPP = "whatsapp"


class Status(StrEnum):
    """Where a notification is in its life. A status never moves backwards."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    RETRYING = "retrying"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Priority(StrEnum):
    """`high` overtakes waiting `normal` work, which overtakes waiting `low` work."""

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class Routing(StrEnum):
    """How a message uses the channels it may take: every one at once, or one after another."""

    ALL = "all"
    # In order; the next channel only when the previous one failed for good.
    FALLBACK = "fallback"


class SkipReason(StrEnum):
    """Why a message did not use a channel (`skipped` of a message), in the order they are
    checked: the first that applies is the one reported."""

    # The request's `channels` does not name it.
    NOT_REQUESTED = "not_requested"
    # The template (in the locale picked) has no content for it.
    NOT_IN_TEMPLATE = "not_in_template"
    # The recipient has no address for it (no email, phone, WhatsApp number or push token).
    NO_ADDRESS = "no_address"
    # The recipient opted out of the channel (a `critical` template ignores it).
    OPTED_OUT = "opted_out"
    # The recipient opted out of the template's category (a `critical` template ignores it).
    CATEGORY_OPTED_OUT = "category_opted_out"
    # Fallback routing: an earlier channel was sent, so this one was not needed.
    NOT_NEEDED = "not_needed"


# The same as plain strings, for SQL, schemas and labels.
CHANNELS: tuple[str, ...] = tuple(c.value for c in Channel)
STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
PRIORITIES: tuple[str, ...] = tuple(p.value for p in Priority)
ROUTINGS: tuple[str, ...] = tuple(r.value for r in Routing)
SKIP_REASONS: tuple[str, ...] = tuple(r.value for r in SkipReason)

# Waiting for an attempt: what the reconciler watches and a client may still cancel.
WAITING: tuple[str, ...] = ("scheduled", "queued", "retrying")
CANCELLABLE = WAITING
# Done for good: what history clean-up may delete.
FINISHED: tuple[str, ...] = ("sent", "delivered", "failed", "cancelled")
# Provider accepted (or confirmed) it.
SUCCEEDED: tuple[str, ...] = ("sent", "delivered")

assert set(WAITING) | set(FINISHED) | {"sending"} == set(STATUSES)
