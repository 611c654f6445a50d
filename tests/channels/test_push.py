"""FcmProvider against a stand-in Google token endpoint and FCM API (pytest-httpserver).

The token endpoint verifies the service-account JWT as Google would: RS256 signature with
the account's public key, then issuer, audience, scope and lifetime.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from herald.channels import Message, PermanentError, TransientError
from herald.channels.push import FcmProvider, ServiceAccount
from tests.channels.conftest import free_port

PROJECT = "herald-test"
SEND_PATH = f"/v1/projects/{PROJECT}/messages:send"
CLIENT_EMAIL = "herald@herald-test.iam.gserviceaccount.com"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
DEVICE = "fcm-registration-token-0123456789"
NOTIFICATION_ID = "c7d1e2f3-a4b5-4c6d-8e7f-9a0b1c2d3e4f"
MESSAGE = Message(NOTIFICATION_ID, "push", DEVICE, subject="Title", body="Body")


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class TokenEndpoint:
    """Google's OAuth token endpoint: verifies the JWT bearer assertion, hands out tokens."""

    def __init__(self, private_key: rsa.RSAPrivateKey, token_uri: str, expires_in: int) -> None:
        self.public_key = private_key.public_key()
        self.token_uri = token_uri
        self.expires_in = expires_in
        self.issued: list[str] = []

    def __call__(self, request: Request) -> Response:
        form = parse_qs(request.get_data(as_text=True))
        assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
        header_b64, claims_b64, signature_b64 = form["assertion"][0].split(".")
        # Raises InvalidSignature (a handler error the `server` fixture re-raises) if forged.
        self.public_key.verify(
            _b64decode(signature_b64),
            f"{header_b64}.{claims_b64}".encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
        header = json.loads(_b64decode(header_b64))
        claims = json.loads(_b64decode(claims_b64))
        assert header == {"alg": "RS256", "typ": "JWT", "kid": "key-1"}
        assert claims["iss"] == CLIENT_EMAIL
        assert claims["aud"] == self.token_uri
        assert claims["scope"] == SCOPE
        assert abs(claims["iat"] - time.time()) < 60
        assert claims["exp"] == claims["iat"] + 3600
        time.sleep(0.1)  # a slow endpoint, so concurrent sends would all pile in without the lock
        token = f"access-token-{len(self.issued) + 1}"
        self.issued.append(token)
        body = {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
        return Response(json.dumps(body), content_type="application/json")


def write_service_account(path: Path, private_key: rsa.RSAPrivateKey, token_uri: str) -> Path:
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "key-1",
        "private_key": pem,
        "client_email": CLIENT_EMAIL,
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info))
    return path


def fcm(
    server: HTTPServer,
    client: httpx.AsyncClient,
    tmp_path: Path,
    private_key: rsa.RSAPrivateKey,
    expires_in: int = 3600,
) -> tuple[FcmProvider, TokenEndpoint]:
    token_uri = server.url_for("/token")
    endpoint = TokenEndpoint(private_key, token_uri, expires_in)
    server.expect_request("/token", method="POST").respond_with_handler(endpoint)
    key_file = write_service_account(tmp_path / "sa.json", private_key, token_uri)
    provider = FcmProvider(
        client,
        project_id=PROJECT,
        credentials=ServiceAccount.from_file(str(key_file)),
        base_url=server.url_for("/"),
    )
    return provider, endpoint


def sent(server: HTTPServer) -> list[Request]:
    return [request for request, _ in server.log if request.path == SEND_PATH]


def fcm_error(status: int, rpc_status: str, code: str | None, text: str = "boom") -> Any:
    details = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]
    error = {"code": status, "message": text, "status": rpc_status}
    if code is not None:
        error["details"] = details
    return {"error": error}


async def test_sends_with_a_verified_token(
    server: HTTPServer, client: httpx.AsyncClient, tmp_path: Path, private_key: rsa.RSAPrivateKey
) -> None:
    provider, endpoint = fcm(server, client, tmp_path, private_key)
    name = f"projects/{PROJECT}/messages/0:1500415314455276%31bd1c9631bd1c96"
    server.expect_request(SEND_PATH, method="POST").respond_with_json({"name": name})
    message = Message(
        NOTIFICATION_ID, "push", DEVICE, subject="Title", body="Body", data={"order": "42"}
    )

    result = await provider.send(message)

    assert result.provider_message_id == name
    assert endpoint.issued == ["access-token-1"]
    (request,) = sent(server)
    assert request.method == "POST"
    assert request.headers["Authorization"] == "Bearer access-token-1"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.get_data()) == {
        "message": {
            "token": DEVICE,
            "notification": {"title": "Title", "body": "Body"},
            "data": {"order": "42"},
        }
    }


async def test_data_only_message_has_no_notification(
    server: HTTPServer, client: httpx.AsyncClient, tmp_path: Path, private_key: rsa.RSAPrivateKey
) -> None:
    provider, _ = fcm(server, client, tmp_path, private_key)
    server.expect_request(SEND_PATH).respond_with_json({"name": "projects/p/messages/1"})

    await provider.send(Message(NOTIFICATION_ID, "push", DEVICE, data={"sync": "1"}))

    assert json.loads(sent(server)[0].get_data()) == {
        "message": {"token": DEVICE, "data": {"sync": "1"}}
    }


async def test_concurrent_sends_share_one_token_request(
    server: HTTPServer, client: httpx.AsyncClient, tmp_path: Path, private_key: rsa.RSAPrivateKey
) -> None:
    provider, endpoint = fcm(server, client, tmp_path, private_key)
    server.expect_request(SEND_PATH).respond_with_json({"name": "projects/p/messages/1"})

    await asyncio.gather(*(provider.send(MESSAGE) for _ in range(10)))

    assert endpoint.issued == ["access-token-1"]
    requests = sent(server)
    assert len(requests) == 10
    assert {r.headers["Authorization"] for r in requests} == {"Bearer access-token-1"}


@pytest.mark.parametrize(("expires_in", "tokens"), [(3600, 1), (120, 1), (60, 2), (30, 2)])
async def test_token_is_refreshed_within_a_minute_of_expiry(
    server: HTTPServer,
    client: httpx.AsyncClient,
    tmp_path: Path,
    private_key: rsa.RSAPrivateKey,
    expires_in: int,
    tokens: int,
) -> None:
    provider, endpoint = fcm(server, client, tmp_path, private_key, expires_in=expires_in)
    server.expect_request(SEND_PATH).respond_with_json({"name": "projects/p/messages/1"})

    await provider.send(MESSAGE)
    await provider.send(MESSAGE)

    assert len(endpoint.issued) == tokens
    expected = f"Bearer access-token-{tokens}"
    assert sent(server)[-1].headers["Authorization"] == expected


async def test_rejected_token_is_dropped_and_transient(
    server: HTTPServer, client: httpx.AsyncClient, tmp_path: Path, private_key: rsa.RSAPrivateKey
) -> None:
    provider, endpoint = fcm(server, client, tmp_path, private_key)
    server.expect_oneshot_request(SEND_PATH).respond_with_json(
        fcm_error(401, "UNAUTHENTICATED", None, "Request had invalid authentication"), status=401
    )
    server.expect_request(SEND_PATH).respond_with_json({"name": "projects/p/messages/2"})

    with pytest.raises(TransientError, match="fcm UNAUTHENTICATED"):
        await provider.send(MESSAGE)
    result = await provider.send(MESSAGE)

    assert result.provider_message_id == "projects/p/messages/2"
    assert endpoint.issued == ["access-token-1", "access-token-2"]
    assert sent(server)[-1].headers["Authorization"] == "Bearer access-token-2"


@pytest.mark.parametrize(
    ("status", "rpc_status", "code"),
    [
        (404, "NOT_FOUND", "UNREGISTERED"),
        (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"),
        (403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"),
        (401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"),
        (404, "NOT_FOUND", None),
    ],
)
async def test_refusals_are_permanent(
    server: HTTPServer,
    client: httpx.AsyncClient,
    tmp_path: Path,
    private_key: rsa.RSAPrivateKey,
    status: int,
    rpc_status: str,
    code: str | None,
) -> None:
    provider, endpoint = fcm(server, client, tmp_path, private_key)
    body = fcm_error(status, rpc_status, code, "Requested entity was not found.")
    server.expect_request(SEND_PATH).respond_with_json(body, status=status)

    with pytest.raises(PermanentError) as caught:
        await provider.send(MESSAGE)

    assert caught.value.reason == f"fcm {code or rpc_status}: Requested entity was not found."
    await provider.access_token()
    assert len(endpoint.issued) == 1  # the token was kept


@pytest.mark.parametrize(
    ("status", "rpc_status", "code"),
    [
        (429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"),
        (503, "UNAVAILABLE", "UNAVAILABLE"),
        (500, "INTERNAL", "INTERNAL"),
        (502, "UNAVAILABLE", None),
    ],
)
async def test_quota_and_outages_are_transient_with_retry_after(
    server: HTTPServer,
    client: httpx.AsyncClient,
    tmp_path: Path,
    private_key: rsa.RSAPrivateKey,
    status: int,
    rpc_status: str,
    code: str | None,
) -> None:
    provider, _ = fcm(server, client, tmp_path, private_key)
    body = fcm_error(status, rpc_status, code)
    server.expect_request(SEND_PATH).respond_with_json(
        body, status=status, headers={"Retry-After": "60"}
    )

    with pytest.raises(TransientError) as caught:
        await provider.send(MESSAGE)

    assert caught.value.retry_after == 60
    assert caught.value.reason == f"fcm {code or rpc_status}: boom"


async def test_token_endpoint_errors(
    server: HTTPServer, client: httpx.AsyncClient, tmp_path: Path, private_key: rsa.RSAPrivateKey
) -> None:
    key_file = write_service_account(tmp_path / "sa.json", private_key, server.url_for("/token"))
    provider = FcmProvider(
        client,
        project_id=PROJECT,
        credentials=ServiceAccount.from_file(str(key_file)),
        base_url=server.url_for("/"),
    )
    server.expect_oneshot_request("/token").respond_with_json(
        {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, status=400
    )
    server.expect_oneshot_request("/token").respond_with_data(
        "busy", status=503, headers={"Retry-After": "5"}
    )

    with pytest.raises(PermanentError) as refused:
        await provider.send(MESSAGE)
    with pytest.raises(TransientError) as unavailable:
        await provider.send(MESSAGE)

    assert refused.value.reason == "fcm token invalid_grant: Invalid JWT Signature."
    assert unavailable.value.retry_after == 5
    assert sent(server) == []


async def test_connection_refused_is_transient(
    client: httpx.AsyncClient, tmp_path: Path, private_key: rsa.RSAPrivateKey
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    key_file = write_service_account(tmp_path / "sa.json", private_key, f"{dead}/token")
    provider = FcmProvider(
        client,
        project_id=PROJECT,
        credentials=ServiceAccount.from_file(str(key_file)),
        base_url=dead,
    )

    with pytest.raises(TransientError, match="ConnectError"):
        await provider.send(MESSAGE)


async def test_empty_push_is_permanent(
    server: HTTPServer, client: httpx.AsyncClient, tmp_path: Path, private_key: rsa.RSAPrivateKey
) -> None:
    provider, endpoint = fcm(server, client, tmp_path, private_key)

    with pytest.raises(PermanentError):
        await provider.send(Message(NOTIFICATION_ID, "push", DEVICE))
    assert endpoint.issued == []
