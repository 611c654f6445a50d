"""Email over SMTP with aiosmtplib: one connection per message; STARTTLS or implicit TLS
(SMTPS) and AUTH optional.

The Message-ID is derived from the notification id, so a retried send carries the same
Message-ID and the id recorded as `provider_message_id` matches what bounces and replies quote.
SMTP reply codes decide what to do next: 4xx is a temporary refusal (retry), 5xx a permanent
one; connection failures and timeouts are retried.
"""

from __future__ import annotations

import ssl
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, parseaddr

import aiosmtplib

from herald.channels.base import Message, PermanentError, ProviderResult, TransientError


class SmtpProvider:
    """Sends email through one SMTP server (`SMTP_HOST:SMTP_PORT`) as `EMAIL_FROM`."""

    name = "smtp"
    channel = "email"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str = "",
        password: str = "",
        starttls: bool = False,
        implicit_tls: bool = False,
        timeout: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.username = username
        self.password = password
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.timeout = timeout
        self.tls_context = tls_context
        domain = parseaddr(sender)[1].rpartition("@")[2]
        self._domain = domain or "localhost"

    def message_id(self, notification_id: str) -> str:
        """`<notification_id@sender-domain>`: stable across retries of one notification."""
        return f"<{notification_id}@{self._domain}>"

    def build(self, message: Message) -> EmailMessage:
        """The MIME message: text/plain, text/html, or multipart/alternative with both."""
        if message.body is None and message.html is None:
            raise PermanentError("smtp: email has neither a text body nor an HTML body")
        addresses = getaddresses([message.to])
        if len(addresses) != 1 or "@" not in addresses[0][1]:
            raise PermanentError("smtp: recipient must be exactly one email address")
        email = EmailMessage()
        try:
            email["From"] = self.sender
            email["To"] = message.to
            email["Subject"] = message.subject or ""
            email["Date"] = formatdate(usegmt=True)
            email["Message-ID"] = self.message_id(message.notification_id)
        except ValueError as exc:  # CR/LF in a header value would let a caller inject headers
            raise PermanentError(f"smtp: invalid header: {exc}") from exc
        if message.body is not None:
            email.set_content(message.body)
            if message.html is not None:
                email.add_alternative(message.html, subtype="html")
        else:
            email.set_content(message.html or "", subtype="html")
        return email

    async def send(self, message: Message) -> ProviderResult:
        """Send over a fresh SMTP connection; the result id is the Message-ID header."""
        email = self.build(message)
        recipient = getaddresses([message.to])[0][1]
        try:
            await aiosmtplib.send(
                email,
                recipients=[recipient],
                hostname=self.host,
                port=self.port,
                username=self.username or None,
                password=self.password or None,
                start_tls=self.starttls,
                use_tls=self.implicit_tls,
                tls_context=self.tls_context,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0] if exc.recipients else None
            if refused is None:
                raise TransientError("smtp: recipients refused") from exc
            raise _classify(refused.code, refused.message) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _classify(exc.code, exc.message) from exc
        except aiosmtplib.SMTPNotSupported as exc:
            raise PermanentError(f"smtp: not supported by the server: {exc.message}") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            detail = str(exc) or "no detail"
            raise TransientError(f"smtp: {type(exc).__name__}: {detail}") from exc
        return ProviderResult(provider_message_id=str(email["Message-ID"]))


def _classify(code: int, text: str) -> TransientError | PermanentError:
    """5xx replies are permanent refusals; 4xx (and anything unexpected) may pass later."""
    reason = f"smtp {code}: {' '.join(text.split())}"
    if 500 <= code <= 599:
        return PermanentError(reason)
    return TransientError(reason)
