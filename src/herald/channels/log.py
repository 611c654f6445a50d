"""The `log` provider: writes a masked summary of the message to the log and succeeds.

It is the default for every channel that is not configured, so the quick start delivers
without any account. It never logs the content (subject, body, HTML, data values), only
lengths and the masked recipient: logs are kept longer and read by more people than messages.
"""

from __future__ import annotations

import structlog

from herald.channels.base import Message, ProviderResult
from herald.logging import mask_address

log = structlog.get_logger()


class LogProvider:
    """Logs `channel.logged` for each message instead of sending it."""

    name = "log"

    def __init__(self, channel: str) -> None:
        self.channel = channel

    async def send(self, message: Message) -> ProviderResult:
        """Log the masked summary; the id is `log-<notification_id>`."""
        log.info(
            "channel.logged",
            channel=message.channel,
            provider=self.name,
            notification_id=message.notification_id,
            to=mask_address(message.to),
            subject_length=len(message.subject or ""),
            body_length=len(message.body or ""),
            html_length=len(message.html or ""),
            data_keys=len(message.data or {}),
            template=(message.template or {}).get("name"),
        )
        return ProviderResult(provider_message_id=f"log-{message.notification_id}")
