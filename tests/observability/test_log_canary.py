"""Log canaries: drive every error path we can reach with known secrets, then search all output.

A `herald serve` process (JSON logs, then console logs) gets a known API key, provider
credentials (Twilio token, WhatsApp token, an FCM service-account key), recipient addresses
and a canary body and subject, and then: hostile JSON nested far too deep, a provider that
answers 200 with an HTML page echoing the request, a provider that answers 500 echoing it, a
provider that cannot be reached, a job that crashes with secrets in its local variables, and
Postgres cut in the middle of requests. Everything the process wrote to stdout and stderr is
then searched for each secret: none may appear (masked addresses are fine).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import redis.asyncio as aioredis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pytest_httpserver import HTTPServer
from sqlalchemy.engine import make_url
from werkzeug import Request, Response

from herald.queue import JobQueue, registry
from tests.conftest import DATABASE_URL, REDIS_URL
from tests.notifications.conftest import auth, new_key
from tests.support.process import HeraldProcess, free_port
from tests.support.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.process, pytest.mark.slow]

Start = Callable[..., HeraldProcess]

TWILIO_SID = "AC5e1f0c0ffee0123456789abcdef0123"
TWILIO_TOKEN = "canary-twilio-token-3b9f0d1e"
WHATSAPP_TOKEN = "canary-whatsapp-token-EAAG9x7q"
FCM_ACCESS_TOKEN = "canary-fcm-access-token-ya29c0"
BODY = "canary-body-6c2d1f: your code is 481516"
SUBJECT = "canary-subject-9a7e"
EMAIL = "canary.recipient@example.com"
PHONE = "+447700900123"
DEVICE = "canaryDeviceToken" + "x" * 40
METADATA = {"secret": "canary-metadata-77e1"}


def _html_echo(request: Request) -> Response:
    """A provider that says 200 but returns an HTML page that echoes what it was sent."""
    form = parse_qs(request.get_data(as_text=True))
    page = f"<html><body>Thanks! To={form.get('To')} Body={form.get('Body')}</body></html>"
    return Response(page, status=200, content_type="text/html")


def _error_echo(request: Request) -> Response:
    """A provider that fails and echoes the request in its error message."""
    return Response(
        json.dumps({"message": f"upstream broke on {request.get_data(as_text=True)}"}),
        status=500,
        content_type="application/json",
    )


@pytest.fixture
def providers(httpserver: HTTPServer, tmp_path: Path) -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    account = {
        "type": "service_account",
        "project_id": "canary",
        "private_key_id": "canary-key-id-5f5f",
        "private_key": pem,
        "client_email": "herald@canary.iam.gserviceaccount.com",
        "token_uri": httpserver.url_for("/token"),
    }
    credentials = tmp_path / "fcm.json"
    credentials.write_text(json.dumps(account))
    twilio = f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    httpserver.expect_request(twilio).respond_with_handler(_twilio)
    httpserver.expect_request("/token").respond_with_json(
        {"access_token": FCM_ACCESS_TOKEN, "expires_in": 3600}
    )
    httpserver.expect_request("/v1/projects/canary/messages:send").respond_with_handler(_error_echo)
    env = {
        "SMS_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": TWILIO_SID,
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "TWILIO_FROM": "+15550001111",
        "TWILIO_BASE_URL": httpserver.url_for("/"),
        "PUSH_PROVIDER": "fcm",
        "FCM_PROJECT_ID": "canary",
        "FCM_CREDENTIALS_FILE": str(credentials),
        "FCM_BASE_URL": httpserver.url_for("/"),
        # Nothing listens there: every WhatsApp send fails to connect.
        "WHATSAPP_PROVIDER": "meta",
        "WHATSAPP_PHONE_NUMBER_ID": "1234567890",
        "WHATSAPP_ACCESS_TOKEN": WHATSAPP_TOKEN,
        "WHATSAPP_BASE_URL": f"http://127.0.0.1:{free_port()}",
        "RETRY_BASE_SECONDS": "0.05",
        "MAX_ATTEMPTS": "2",
    }
    # The key material itself, one line of the PEM's base64, and the basic-auth header value.
    pem_line = pem.splitlines()[5]
    basic = base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
    secrets = [TWILIO_TOKEN, WHATSAPP_TOKEN, FCM_ACCESS_TOKEN, pem_line, basic]
    return {"env": env, "secrets": secrets}


def _twilio(request: Request) -> Response:
    body = parse_qs(request.get_data(as_text=True)).get("Body", [""])[0]
    if body.endswith("html"):
        return _html_echo(request)
    return _error_echo(request)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _with_nested_metadata(item: dict[str, Any], depth: int) -> str:
    """`item` as JSON with `metadata` nested `depth` deep (built as text: no encoder would)."""
    return json.dumps(item)[:-1] + ', "metadata": {"x": ' + _nested(depth) + "}}"


def _hostile_requests(process: HeraldProcess, key: str) -> list[int]:
    one = _with_nested_metadata(
        {"channel": "email", "to": EMAIL, "subject": SUBJECT, "body": BODY}, 5000
    )
    item = _with_nested_metadata({"channel": "sms", "to": PHONE, "body": BODY}, 300)
    bodies = [
        ("/v1/notifications", one),
        ("/v1/notifications/batch", '{"notifications": [' + item + "]}"),
        ("/v1/notifications/batch", _nested(100_000)),
        ("/v1/notifications", _nested(100_000)),
    ]
    return [
        httpx.post(
            process.url + path,
            content=body,
            headers={**auth(key), "Content-Type": "application/json"},
            timeout=30,
        ).status_code
        for path, body in bodies
    ]


def _deliveries(process: HeraldProcess, key: str) -> list[str]:
    items = [
        {"channel": "sms", "to": PHONE, "body": f"{BODY} html", "metadata": METADATA},
        {"channel": "sms", "to": PHONE, "body": f"{BODY} fail"},
        {"channel": "push", "to": DEVICE, "subject": SUBJECT, "body": BODY},
        {"channel": "whatsapp", "to": PHONE, "body": BODY},
        {"channel": "email", "to": EMAIL, "subject": SUBJECT, "body": BODY},
    ]
    response = httpx.post(
        process.url + "/v1/notifications/batch",
        json={"notifications": items},
        headers=auth(key),
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return [n["id"] for n in response.json()["notifications"]]


def _wait_finished(process: HeraldProcess, key: str, ids: list[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    found: dict[str, Any] = {}
    while time.monotonic() < deadline:
        found = {i: process.get(f"/v1/notifications/{i}", headers=auth(key)).json() for i in ids}
        if all(n["status"] in ("sent", "failed") for n in found.values()):
            return found
        time.sleep(0.1)
    raise AssertionError(f"not finished: {[n['status'] for n in found.values()]}")


def _cut_postgres_mid_requests(process: HeraldProcess, key: str, proxy: TcpProxy) -> None:
    statuses: list[int] = []

    def post_many() -> None:
        for i in range(40):
            response = httpx.post(
                process.url + "/v1/notifications",
                json={"channel": "sms", "to": PHONE, "body": f"{BODY} html", "reference": f"c{i}"},
                headers=auth(key),
                timeout=30,
            )
            statuses.append(response.status_code)

    thread = threading.Thread(target=post_many)
    thread.start()
    while not statuses:
        time.sleep(0.005)
    proxy.pause()
    thread.join()
    proxy.resume()
    assert 503 in statuses, statuses
    assert set(statuses) <= {202, 401, 503}, statuses


def _wait_for_log(process: HeraldProcess, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while text not in process.logs():
        assert time.monotonic() < deadline, f"{text!r} never logged:\n{process.logs()[-3000:]}"
        time.sleep(0.05)


@pytest.mark.parametrize("log_format", ["json", "console"])
async def test_no_secret_reaches_the_logs_on_any_error_path(
    herald: Start, providers: dict[str, Any], log_format: str
) -> None:
    key = await new_key(f"canary-{log_format}")
    url = make_url(DATABASE_URL)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    try:
        via_proxy = url.set(port=proxy.port).render_as_string(hide_password=False)
        process = herald(
            **providers["env"],
            LOG_FORMAT=log_format,
            LOG_LEVEL="DEBUG",
            DATABASE_URL=via_proxy,
            DATABASE_TIMEOUT_SECONDS="2",
        )
        hostile = _hostile_requests(process, key)
        ids = _deliveries(process, key)
        found = _wait_finished(process, key, ids)
        async with aioredis.Redis.from_url(REDIS_URL) as client:
            await JobQueue(client, registry).enqueue("test.crash", key, BODY)
        _wait_for_log(process, "job.crashed")
        _cut_postgres_mid_requests(process, key, proxy)
        _wait_for_log(process, "http.dependency_unavailable")
    finally:
        proxy.stop()
    process.stop()
    logs = process.logs()
    secrets = [key, BODY, SUBJECT, EMAIL, PHONE, DEVICE, METADATA["secret"], *providers["secrets"]]
    leaked = [secret for secret in secrets if secret in logs]
    assert leaked == []
    assert "c***@example.com" in logs  # addresses are logged masked
    assert "provider.unexpected_response" in logs

    assert hostile == [400] * 4
    html, fail, push, whatsapp, email = (found[i] for i in ids)
    assert html["status"] == "sent"
    assert "provider_message_id" not in html
    assert any("not the documented JSON" in (e["detail"] or "") for e in html["events"])
    assert (fail["status"], push["status"], whatsapp["status"]) == ("failed",) * 3
    assert email["status"] == "sent"
