"""The provider interface every channel implements, and the errors a send may raise.

A provider turns one `Message` into one call to an external service. It either returns a
`ProviderResult` or raises a `TransientError` (try again later, perhaps after `retry_after`
seconds) or a `PermanentError` (this message will never go through; do not retry).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Message:
    """One message to one recipient on one channel; the fields used depend on the channel."""

    notification_id: str  # uuid string; use as the idempotency key where the provider takes one
    channel: str  # "email" | "sms" | "push" | "whatsapp"
    to: str  # email address / E.164 number / FCM registration token
    subject: str | None = None  # email subject; push notification title
    body: str | None = None  # email text part, sms text, push body, whatsapp text
    html: str | None = None  # email HTML part (multipart/alternative with the text part)
    data: dict[str, str] | None = None  # push data payload
    template: dict[str, Any] | None = None  # whatsapp: {"name", "language", "parameters"}


@dataclass(frozen=True, slots=True)
class ProviderResult:
    """What the provider said about an accepted message: its id there, when it gave one."""

    provider_message_id: str | None


class ProviderError(Exception):
    """A send failed. `reason` is human-readable and names the provider's code when any."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientError(ProviderError):
    """The send may succeed later: network trouble, rate limits, provider outages.

    `retry_after` is the delay in seconds the provider asked for (Retry-After), if it did.
    """

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.reason, self.retry_after))


class PermanentError(ProviderError):
    """The send will never succeed as it stands (bad recipient, opted out, rejected content)."""


class Provider(Protocol):
    """Sends messages of one channel through one external service."""

    name: str  # "log", "smtp", "twilio", "fcm", "meta"
    channel: str

    async def send(self, message: Message) -> ProviderResult:
        """Send `message`; raise `TransientError` or `PermanentError` when it did not go."""
        ...
