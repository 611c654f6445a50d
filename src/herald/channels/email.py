"""Email over SMTP with aiosmtplib, over pooled connections; STARTTLS or implicit TLS (SMTPS)
and AUTH optional.

Opening an SMTP session costs a TCP connect, the greeting, EHLO, often a TLS handshake and
AUTH: several round trips before the first byte of a message, and most of a send's time with a
remote relay. So connections are kept after a successful send and reused (the most recently
used first), up to `pool_size` idle ones (the email queue's concurrency):

- one idle for over a second is checked with NOOP before it carries a message; one the server
  closed meanwhile is dropped and replaced, and the message never notices;
- one that failed in any way (a refusal, a timeout, a cancelled job) is closed, never reused,
  since its state in the SMTP dialogue is unknown;
- after 100 messages a connection is closed with QUIT, as relays limit messages per session.

The Message-ID is derived from the notification id, so a retried send carries the same
Message-ID and the id recorded as `provider_message_id` matches what bounces and replies quote.
SMTP reply codes decide what to do next: 4xx is a temporary refusal (retry), 5xx a permanent
one; connection failures and timeouts are retried.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, parseaddr

import aiosmtplib

from herald.channels.base import Message, PermanentError, ProviderResult, TransientError

# An idle connection is checked with NOOP before use after this long.
_CHECK_IDLE_SECONDS = 1.0
# Relays cap messages per session (often at 100 or more); close before reaching theirs.
_MAX_MESSAGES_PER_CONNECTION = 100


@dataclass(slots=True)
class _Connection:
    smtp: aiosmtplib.SMTP
    idle_since: float
    sent: int = 0


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
        pool_size: int = 10,
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
        self.pool_size = pool_size
        self._idle: list[_Connection] = []
        self._closed = False
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
            raise PermanentError(
                f"smtp: invalid header: {exc}", summary="smtp: invalid header"
            ) from exc
        if message.body is not None:
            email.set_content(message.body)
            if message.html is not None:
                email.add_alternative(message.html, subtype="html")
        else:
            email.set_content(message.html or "", subtype="html")
        return email

    async def send(self, message: Message) -> ProviderResult:
        """Send over a pooled connection; the result id is the Message-ID header."""
        email = self.build(message)
        recipient = getaddresses([message.to])[0][1]
        try:
            connection = await self._checkout()
            try:
                await connection.smtp.send_message(email, recipients=[recipient])
            except BaseException:
                connection.smtp.close()
                raise
            await self._checkin(connection)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0] if exc.recipients else None
            if refused is None:
                raise TransientError("smtp: recipients refused") from exc
            raise _classify(refused.code, refused.message) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _classify(exc.code, exc.message) from exc
        except aiosmtplib.SMTPNotSupported as exc:
            raise PermanentError(
                f"smtp: not supported by the server: {exc.message}",
                summary="smtp: not supported by the server",
            ) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            detail = str(exc) or "no detail"
            raise TransientError(f"smtp: {type(exc).__name__}: {detail}") from exc
        return ProviderResult(provider_message_id=str(email["Message-ID"]))

    async def _checkout(self) -> _Connection:
        """The most recently used idle connection that still answers, or a new one."""
        while self._idle:
            connection = self._idle.pop()
            if not connection.smtp.is_connected:
                continue
            if time.monotonic() - connection.idle_since > _CHECK_IDLE_SECONDS:
                try:
                    await connection.smtp.noop()
                except (aiosmtplib.SMTPException, OSError):
                    connection.smtp.close()
                    continue
            return connection
        smtp = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username or None,
            password=self.password or None,
            start_tls=self.starttls,
            use_tls=self.implicit_tls,
            tls_context=self.tls_context,
            timeout=self.timeout,
        )
        await smtp.connect()
        return _Connection(smtp, time.monotonic())

    async def _checkin(self, connection: _Connection) -> None:
        connection.sent += 1
        if (
            self._closed
            or connection.sent >= _MAX_MESSAGES_PER_CONNECTION
            or len(self._idle) >= self.pool_size
        ):
            await _quit(connection.smtp)
            return
        connection.idle_since = time.monotonic()
        self._idle.append(connection)

    async def aclose(self) -> None:
        """Say QUIT on every idle connection; connections still sending close when done."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            await _quit(connection.smtp)


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    """End a session politely; a server that is gone already is no error."""
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        await smtp.quit()
    smtp.close()


def _classify(code: int, text: str) -> TransientError | PermanentError:
    """5xx replies are permanent refusals; 4xx (and anything unexpected) may pass later."""
    summary = f"smtp {code}"
    reason = f"{summary}: {' '.join(text.split())}"
    if 500 <= code <= 599:
        return PermanentError(reason, summary=summary)
    return TransientError(reason, summary=summary)
