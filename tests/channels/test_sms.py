"""TwilioProvider against a stand-in Twilio API (pytest-httpserver) on loopback."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs

import httpx
import pytest
from pytest_httpserver import HTTPServer

from herald.channels import Message, PermanentError, TransientError
from herald.channels.sms import TwilioProvider
from tests.channels.conftest import free_port

SID = "AC0123456789abcdef0123456789abcdef"
PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"
NOTIFICATION_ID = "2d3b8f0e-6c1e-4a57-9c1e-3f6b1d2e4a5b"
MESSAGE = Message(NOTIFICATION_ID, "sms", "+447911123456", body="Your code is 123456")


def twilio(
    client: httpx.AsyncClient, base_url: str, sender: str = "+15005550006"
) -> TwilioProvider:
    return TwilioProvider(
        client, account_sid=SID, auth_token="auth-token", sender=sender, base_url=base_url
    )


async def test_sends_the_form_with_auth_and_idempotency_token(
    server: HTTPServer, client: httpx.AsyncClient
) -> None:
    server.expect_request(PATH, method="POST").respond_with_json(
        {"sid": "SM0123456789abcdef0123456789abcdef", "status": "queued"}, status=201
    )

    result = await twilio(client, server.url_for("/")).send(MESSAGE)

    assert result.provider_message_id == "SM0123456789abcdef0123456789abcdef"
    request, _ = server.log[0]
    assert (request.method, request.path) == ("POST", PATH)
    credentials = base64.b64encode(f"{SID}:auth-token".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {credentials}"
    assert request.headers["I-Twilio-Idempotency-Token"] == NOTIFICATION_ID
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.get_data(as_text=True)) == {
        "To": ["+447911123456"],
        "From": ["+15005550006"],
        "Body": ["Your code is 123456"],
    }


async def test_messaging_service_sender(server: HTTPServer, client: httpx.AsyncClient) -> None:
    server.expect_request(PATH, method="POST").respond_with_json({"sid": "SM1"}, status=201)

    await twilio(client, server.url_for("/"), sender="MG0123").send(MESSAGE)

    form = parse_qs(server.log[0][0].get_data(as_text=True))
    assert form["MessagingServiceSid"] == ["MG0123"]
    assert "From" not in form


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (21211, "The 'To' number +447911123456 is not a valid phone number."),
        (21610, "Attempt to send to unsubscribed recipient"),
        (21614, "'To' number is not a valid mobile number"),
        (21408, "Permission to send an SMS has not been enabled for the region"),
        (20003, "Authenticate"),
    ],
)
async def test_client_errors_are_permanent_and_name_the_code(
    server: HTTPServer, client: httpx.AsyncClient, code: int, text: str
) -> None:
    status = 401 if code == 20003 else 400
    body = {"code": code, "message": text, "more_info": "https://...", "status": status}
    server.expect_request(PATH).respond_with_json(body, status=status)

    with pytest.raises(PermanentError) as caught:
        await twilio(client, server.url_for("/")).send(MESSAGE)

    assert caught.value.reason == f"twilio {code}: {text}"


async def test_rate_limit_is_transient_with_retry_after(
    server: HTTPServer, client: httpx.AsyncClient
) -> None:
    body = {"code": 20429, "message": "Too Many Requests", "status": 429}
    server.expect_request(PATH).respond_with_json(body, status=429, headers={"Retry-After": "7"})

    with pytest.raises(TransientError) as caught:
        await twilio(client, server.url_for("/")).send(MESSAGE)

    assert caught.value.retry_after == 7
    assert "20429" in caught.value.reason


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_transient(
    server: HTTPServer, client: httpx.AsyncClient, status: int
) -> None:
    server.expect_request(PATH).respond_with_data("upstream down", status=status)

    with pytest.raises(TransientError) as caught:
        await twilio(client, server.url_for("/")).send(MESSAGE)

    assert caught.value.retry_after is None
    assert caught.value.reason == f"twilio HTTP {status}: upstream down"


async def test_connection_refused_is_transient(client: httpx.AsyncClient) -> None:
    with pytest.raises(TransientError, match="twilio: ConnectError"):
        await twilio(client, f"http://127.0.0.1:{free_port()}").send(MESSAGE)


async def test_empty_body_is_permanent_without_a_request(client: httpx.AsyncClient) -> None:
    message = Message(NOTIFICATION_ID, "sms", "+447911123456", body="")

    with pytest.raises(PermanentError):
        await twilio(client, f"http://127.0.0.1:{free_port()}").send(message)
