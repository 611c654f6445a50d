"""REST's own wire shapes: the batch envelopes and the problem document.

A notification's JSON is the domain object's (`herald.notifications.model`) own encoding.
"""

from __future__ import annotations

from typing import Any

import msgspec

from herald.notifications.model import Notification, NotificationInput


class BatchIn(msgspec.Struct, forbid_unknown_fields=True):
    """Up to 1000 notifications, accepted all together or not at all."""

    notifications: list[NotificationInput]


class BatchOut(msgspec.Struct):
    notifications: list[Notification]


class Problem(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details; `errors` names each bad field."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None
