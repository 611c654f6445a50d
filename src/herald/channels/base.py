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
    """What the provider said about an accepted message: its id there, when it gave one.

    `warning` says what was odd about an acceptance, e.g. a 2xx whose body was not the
    provider's documented JSON (so there is no message id to record).
    """

    provider_message_id: str | None
    warning: str | None = None


class ProviderError(Exception):
    """A send failed. `reason` is human-readable and names the provider's code when any.

    `summary` is what the logs may say: the reason without the provider's own words, which
    can quote the message (an SMTP server echoes the address, an API its request). The full
    reason is stored with the notification, where only its owner reads it. It defaults to
    `reason`, for reasons made only of Herald's words.
    """

    def __init__(self, reason: str, *, summary: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.summary = summary or reason

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword arguments do not survive Exception's own pickling; the instance dict does.
        return (type(self), (self.reason,), self.__dict__)


class TransientError(ProviderError):
    """The send may succeed later: network trouble, rate limits, provider outages.

    `retry_after` is the delay in seconds the provider asked for (Retry-After), if it did.
    """

    def __init__(
        self, reason: str, retry_after: float | None = None, *, summary: str | None = None
    ) -> None:
        super().__init__(reason, summary=summary)
        self.retry_after = retry_after


class PermanentError(ProviderError):
    """The send will never succeed as it stands (bad recipient, opted out, rejected content)."""


class AddressGone(PermanentError):
    """The address no longer exists at the provider (FCM `UNREGISTERED`: the app was
    uninstalled or the token expired); whoever stores it should forget it."""


class Provider(Protocol):
    """Sends messages of one channel through one external service."""

    name: str  # "log", "smtp", "twilio", "fcm", "meta"
    channel: str

    async def send(self, message: Message) -> ProviderResult:
        """Send `message`; raise `TransientError` or `PermanentError` when it did not go."""
        ...
