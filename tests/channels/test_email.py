"""SmtpProvider against a real SMTP server (aiosmtpd) on a loopback port."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from herald.channels import Message, PermanentError, TransientError
from herald.channels.email import SmtpProvider
from tests.channels.conftest import free_port
from tests.support.tls import self_signed

NOTIFICATION_ID = "5f0c7a4e-3a55-4a8e-9a61-1b7f0c2d9e10"


class Recorder:
    """Accepts every message and keeps the envelopes; `rcpt_reply` refuses recipients."""

    def __init__(self, rcpt_reply: str | None = None) -> None:
        self.rcpt_reply = rcpt_reply
        self.envelopes: list[Envelope] = []

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"

    def received(self) -> EmailMessage:
        assert len(self.envelopes) == 1
        content = self.envelopes[0].original_content or b""
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def start(handler: Recorder, **kwargs: Any) -> Iterator[tuple[Controller, int]]:
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield controller, port
    finally:
        controller.stop()


ProviderFactory = Callable[..., SmtpProvider]


@pytest.fixture
async def provider() -> AsyncIterator[ProviderFactory]:
    """Makes providers for a port; their pooled connections are closed after the test."""
    made: list[SmtpProvider] = []

    def make(port: int, **kwargs: Any) -> SmtpProvider:
        smtp = SmtpProvider(
            host="127.0.0.1", port=port, sender="Herald <herald@example.com>", timeout=5, **kwargs
        )
        made.append(smtp)
        return smtp

    yield make
    for smtp in made:
        await smtp.aclose()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def smtp_port(recorder: Recorder) -> Iterator[int]:
    for _, port in start(recorder):
        yield port


async def test_plain_text_email(
    recorder: Recorder, smtp_port: int, provider: ProviderFactory
) -> None:
    message = Message(
        NOTIFICATION_ID, "email", "jane@example.org", subject="Hello", body="Plain body"
    )

    result = await provider(smtp_port).send(message)

    expected_id = f"<{NOTIFICATION_ID}@example.com>"
    assert result.provider_message_id == expected_id
    assert recorder.envelopes[0].mail_from == "herald@example.com"
    assert recorder.envelopes[0].rcpt_tos == ["jane@example.org"]
    received = recorder.received()
    assert received["From"] == "Herald <herald@example.com>"
    assert received["To"] == "jane@example.org"
    assert received["Subject"] == "Hello"
    assert received["Message-ID"] == expected_id
    assert received["Date"]
    assert received.get_content_type() == "text/plain"
    assert received.get_content().strip() == "Plain body"


async def test_html_email_is_multipart_alternative(
    recorder: Recorder, smtp_port: int, provider: ProviderFactory
) -> None:
    message = Message(
        NOTIFICATION_ID,
        "email",
        "jane@example.org",
        subject="Reçu №42 ✓",
        body="Total: 10 €",
        html="<p>Total: <b>10 €</b></p>",
    )

    await provider(smtp_port).send(message)

    received = recorder.received()
    assert received["Subject"] == "Reçu №42 ✓"
    assert received.get_content_type() == "multipart/alternative"
    parts = list(received.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    assert isinstance(parts[0], EmailMessage)
    assert isinstance(parts[1], EmailMessage)
    assert parts[0].get_content().strip() == "Total: 10 €"
    assert parts[1].get_content().strip() == "<p>Total: <b>10 €</b></p>"


async def test_html_only_email(
    recorder: Recorder, smtp_port: int, provider: ProviderFactory
) -> None:
    message = Message(NOTIFICATION_ID, "email", "jane@example.org", subject="Hi", html="<p>x</p>")

    await provider(smtp_port).send(message)

    assert recorder.received().get_content_type() == "text/html"


@pytest.mark.parametrize(
    ("reply", "error", "code"),
    [
        ("451 4.3.0 Mailbox temporarily unavailable", TransientError, "451"),
        ("550 5.1.1 No such user", PermanentError, "550"),
    ],
)
async def test_refused_recipient_is_classified_by_code(
    reply: str, error: type[Exception], code: str, provider: ProviderFactory
) -> None:
    for _, port in start(Recorder(rcpt_reply=reply)):
        message = Message(NOTIFICATION_ID, "email", "jane@example.org", subject="s", body="b")
        with pytest.raises(error) as caught:
            await provider(port).send(message)
        assert str(caught.value).startswith(f"smtp {code}:")


async def test_closed_port_is_transient(provider: ProviderFactory) -> None:
    message = Message(NOTIFICATION_ID, "email", "jane@example.org", subject="s", body="b")

    with pytest.raises(TransientError):
        await provider(free_port()).send(message)


@pytest.mark.parametrize(
    "to", ["jane@example.org, eve@example.org", "jane@example.org\r\nBcc: eve@example.org", ""]
)
async def test_bad_recipient_is_permanent_without_connecting(
    to: str, provider: ProviderFactory
) -> None:
    message = Message(NOTIFICATION_ID, "email", to, subject="s", body="b")

    with pytest.raises(PermanentError):
        await provider(free_port()).send(message)


async def test_header_injection_in_subject_is_permanent(provider: ProviderFactory) -> None:
    message = Message(
        NOTIFICATION_ID, "email", "jane@example.org", subject="Hi\r\nBcc: eve@example.org", body="b"
    )

    with pytest.raises(PermanentError):
        await provider(free_port()).send(message)


async def test_starttls_and_auth(tmp_path: Any, provider: ProviderFactory) -> None:
    cert_pem, key_pem = self_signed()
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client_tls = ssl.create_default_context(cadata=cert_pem.decode())
    logins: list[tuple[bytes, bytes]] = []

    def authenticate(
        server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"s3cret", handled=False)

    recorder = Recorder()
    tls = {"tls_context": server_tls, "require_starttls": True}
    for _, port in start(recorder, **tls, authenticator=authenticate, auth_required=True):
        message = Message(NOTIFICATION_ID, "email", "jane@example.org", subject="s", body="b")
        secure = provider(
            port, username="herald", password="s3cret", starttls=True, tls_context=client_tls
        )
        await secure.send(message)
        await secure.aclose()  # while the server is up, so the TLS session ends cleanly

        wrong = provider(
            port, username="herald", password="wrong", starttls=True, tls_context=client_tls
        )
        with pytest.raises(PermanentError, match="smtp 535"):
            await wrong.send(message)

    # aiosmtplib tries the next mechanism (LOGIN) after PLAIN fails.
    assert logins[0] == (b"herald", b"s3cret")
    assert set(logins[1:]) == {(b"herald", b"wrong")}
    assert recorder.received()["Subject"] == "s"


async def test_implicit_tls(tmp_path: Any, provider: ProviderFactory) -> None:
    """SMTPS (usually port 465): TLS from the first byte, no STARTTLS."""
    cert_pem, key_pem = self_signed()
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client_tls = ssl.create_default_context(cadata=cert_pem.decode())

    recorder = Recorder()
    for _, port in start(recorder, ssl_context=server_tls):
        message = Message(NOTIFICATION_ID, "email", "jane@example.org", subject="s", body="b")
        secure = provider(port, implicit_tls=True, tls_context=client_tls)
        await secure.send(message)
        await secure.aclose()  # while the server is up, so the TLS session ends cleanly

        # A plain-text client gets no SMTP greeting from a TLS port: a transient failure.
        with pytest.raises(TransientError):
            await provider(port).send(message)

    assert recorder.received()["Subject"] == "s"


class Counting(Recorder):
    """Counts sessions (EHLO) and QUITs; refuses the first `refuse_first` recipients."""

    def __init__(self, refuse_first: int = 0) -> None:
        super().__init__()
        self.sessions = 0
        self.quits = 0
        self.refuse_first = refuse_first

    async def handle_EHLO(
        self, server: Any, session: Session, envelope: Envelope, hostname: str, responses: Any
    ) -> Any:
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.refuse_first > 0:
            self.refuse_first -= 1
            return "550 5.1.1 No such user"
        return await super().handle_RCPT(server, session, envelope, address, options)

    async def handle_QUIT(self, server: Any, session: Session, envelope: Envelope) -> Any:
        self.quits += 1
        return "221 Bye"


def email(n: int) -> Message:
    return Message(f"{NOTIFICATION_ID[:-2]}{n:02d}", "email", "jane@example.org", "s", "b")


async def send_one_after_another(provider: ProviderFactory, count: int) -> Counting:
    """Send `count` messages in turn through one provider, close it; what the server saw."""
    counting = Counting()
    for _, port in start(counting):
        smtp = provider(port)
        for n in range(count):
            await smtp.send(email(n))
        await smtp.aclose()
    return counting


async def test_one_connection_carries_message_after_message(provider: ProviderFactory) -> None:
    counting = await send_one_after_another(provider, 10)
    assert len(counting.envelopes) == 10
    assert counting.sessions == 1
    assert counting.quits == 1


async def test_concurrent_sends_each_get_a_connection_and_the_pool_keeps_pool_size(
    provider: ProviderFactory,
) -> None:
    counting = Counting()
    for _, port in start(counting):
        smtp = provider(port, pool_size=2)
        await asyncio.gather(*(smtp.send(email(n)) for n in range(5)))
        assert counting.sessions == 5
        assert counting.quits == 3  # two kept for the next messages
        await asyncio.gather(*(smtp.send(email(n)) for n in range(5, 8)))
        assert counting.sessions == 6  # two reused, one new
        await smtp.aclose()
    assert len(counting.envelopes) == 8


async def test_a_connection_the_server_closed_while_idle_is_replaced_unnoticed(
    provider: ProviderFactory,
) -> None:
    counting = Counting()
    for _, port in start(counting, timeout=0.5):  # the server drops sessions idle for 0.5 s
        smtp = provider(port)
        await smtp.send(email(1))
        await asyncio.sleep(1.5)
        await smtp.send(email(2))
        await smtp.aclose()
    assert len(counting.envelopes) == 2
    assert counting.sessions == 2


async def test_a_connection_that_failed_is_never_reused(provider: ProviderFactory) -> None:
    counting = Counting(refuse_first=1)
    for _, port in start(counting):
        smtp = provider(port)
        with pytest.raises(PermanentError, match="smtp 550"):
            await smtp.send(email(1))
        await smtp.send(email(2))
        await smtp.aclose()
    assert len(counting.envelopes) == 1
    assert counting.sessions == 2


async def test_a_connection_is_renewed_after_100_messages(provider: ProviderFactory) -> None:
    counting = await send_one_after_another(provider, 101)
    assert len(counting.envelopes) == 101
    assert counting.sessions == 2
    assert counting.quits == 2
