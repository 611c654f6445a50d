"""The messages' end-to-end harness: the app with every provider pointed at a stand-in.

SMTP goes to an aiosmtpd sink, push to a stand-in FCM (its token endpoint verifies the
service-account JWT, as in tests/channels), SMS to the Twilio stand-in. `fcm_answer` decides
each push's answer (default: accepted).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar import Litestar
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.channels.conftest import free_port
from tests.channels.test_email import Recorder
from tests.channels.test_push import PROJECT, SEND_PATH, TokenEndpoint, write_service_account
from tests.conftest import make_settings, running_app
from tests.notifications.conftest import api_key, auth, new_key, wait_status
from tests.support.standin import TwilioStandIn

PUSH_TOKEN = "fcm-" + "a" * 40 + ":APA91b" + "x" * 60


@dataclass
class Providers:
    smtp: Recorder
    smtp_port: int
    fcm: HTTPServer
    key_file: Path
    twilio: TwilioStandIn
    # (token, n-th push to it) -> (status, body)
    fcm_answer: Callable[[str, int], tuple[int, dict[str, Any]]] = field(
        default=lambda token, n: (200, {"name": f"projects/{PROJECT}/messages/{n}"})
    )
    pushes: list[dict[str, Any]] = field(default_factory=list)

    def emails(self) -> list[EmailMessage]:
        out = []
        for envelope in self.smtp.envelopes:
            parsed = message_from_bytes(envelope.original_content or b"", policy=policy.default)
            assert isinstance(parsed, EmailMessage)
            out.append(parsed)
        return out


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def providers(
    httpserver: HTTPServer, tmp_path: Path, private_key: rsa.RSAPrivateKey
) -> Iterator[Providers]:
    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    twilio = TwilioStandIn().start()
    token_uri = httpserver.url_for("/token")
    key_file = write_service_account(tmp_path / "sa.json", private_key, token_uri)
    found = Providers(recorder, port, httpserver, key_file, twilio)
    httpserver.expect_request("/token", method="POST").respond_with_handler(
        TokenEndpoint(private_key, token_uri, 3600)
    )

    def push(request: Request) -> Response:
        body = json.loads(request.get_data(as_text=True))
        found.pushes.append(body)
        token = body["message"]["token"]
        count = sum(1 for p in found.pushes if p["message"]["token"] == token)
        status, answer = found.fcm_answer(token, count)
        return Response(json.dumps(answer), status=status, content_type="application/json")

    httpserver.expect_request(SEND_PATH, method="POST").respond_with_handler(push)
    try:
        yield found
    finally:
        controller.stop()
        twilio.stop()


@pytest.fixture
async def app_client(providers: Providers) -> AsyncIterator[tuple[Litestar, httpx.AsyncClient]]:
    settings = make_settings(
        email_provider="smtp",
        smtp_host="127.0.0.1",
        smtp_port=providers.smtp_port,
        push_provider="fcm",
        fcm_project_id=PROJECT,
        fcm_credentials_file=str(providers.key_file),
        fcm_base_url=providers.fcm.url_for("/"),
        retry_base_seconds=0.05,
        **providers.twilio.settings(),
    )
    async with running_app(settings) as (app, client):
        yield app, client


@pytest.fixture
def client(app_client: tuple[Litestar, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_client[1]


WELCOME: dict[str, Any] = {
    "category": "account",
    "critical": False,
    "default_locale": "en",
    "locales": {
        "en": {
            "email": {
                "subject": "Welcome, {{ name }}",
                "text": "Hi {{ name }}",
                "html": "<p>Hi <b>{{ name }}</b></p>",
            },
            "push": {"title": "Welcome", "body": "Hi {{ name }}"},
        },
        "de": {
            "email": {
                "subject": "Willkommen, {{ name }}",
                "text": "Hallo {{ name }}",
                "html": "<p>Hallo <b>{{ name }}</b></p>",
            },
            "push": {"title": "Willkommen", "body": "Hallo {{ name }}"},
        },
    },
}
JANE: dict[str, Any] = {
    "email": "jane@example.com",
    "phone": "+447700900123",
    "locale": "de",
    "timezone": "Europe/Berlin",
}


async def put(client: httpx.AsyncClient, key: str, path: str, body: dict[str, Any]) -> Any:
    response = await client.put(path, json=body, headers=auth(key))
    assert response.status_code in (200, 201), response.text
    return response.json()


async def welcome_jane(
    client: httpx.AsyncClient, key: str, template: dict[str, Any] = WELCOME
) -> None:
    """Template `welcome`, recipient `user-42` with email, phone and a push token."""
    await put(client, key, "/v1/templates/welcome", template)
    await put(client, key, "/v1/recipients/user-42", JANE)
    response = await client.post(
        "/v1/recipients/user-42/push-tokens", json={"token": PUSH_TOKEN}, headers=auth(key)
    )
    assert response.status_code in (200, 201, 204), response.text


async def send(
    client: httpx.AsyncClient, key: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    return await client.post("/v1/messages", json=body, headers={**auth(key), **headers})


async def wait_message(
    client: httpx.AsyncClient,
    key: str,
    message_id: str,
    done: Callable[[dict[str, Any]], bool],
    timeout: float = 15,
) -> dict[str, Any]:
    """Poll the message until `done(message)`, within a deadline."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await client.get(f"/v1/messages/{message_id}", headers=auth(key))
        assert response.status_code == 200, response.text
        body = response.json()
        if done(body):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"the message did not get there: {body}")


def statuses(message: dict[str, Any]) -> dict[str, str]:
    return {n["channel"]: n["status"] for n in message["notifications"]}


__all__ = [
    "JANE",
    "PUSH_TOKEN",
    "WELCOME",
    "Providers",
    "api_key",
    "auth",
    "new_key",
    "put",
    "send",
    "statuses",
    "wait_message",
    "wait_status",
    "welcome_jane",
]
