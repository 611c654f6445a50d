"""Herald's vocabulary: channels, statuses and priorities, stated once.

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


# The same as plain strings, for SQL, schemas and labels.
CHANNELS: tuple[str, ...] = tuple(c.value for c in Channel)
STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
PRIORITIES: tuple[str, ...] = tuple(p.value for p in Priority)

# Waiting for an attempt: what the reconciler watches and a client may still cancel.
WAITING: tuple[str, ...] = ("scheduled", "queued", "retrying")
CANCELLABLE = WAITING
# Done for good: what history clean-up may delete.
FINISHED: tuple[str, ...] = ("sent", "delivered", "failed", "cancelled")
# Provider accepted (or confirmed) it.
SUCCEEDED: tuple[str, ...] = ("sent", "delivered")

assert set(WAITING) | set(FINISHED) | {"sending"} == set(STATUSES)
