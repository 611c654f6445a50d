"""A token FCM reports UNREGISTERED is removed from the recipient by itself, against the FCM
stand-in the provider tests use (token endpoint verifying the JWT, send endpoint)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.channels.test_push import (
    PROJECT,
    SEND_PATH,
    TokenEndpoint,
    fcm_error,
    write_service_account,
)
from tests.conftest import make_settings, running_app
from tests.notifications.conftest import auth, new_key, wait_status

GONE = "g" * 40 + ":APA91b" + "x" * 100
ALIVE = "a" * 40 + ":APA91b" + "x" * 100


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def fcm_answers(request: Request) -> Response:
    token = request.get_json()["message"]["token"]
    if token == GONE:
        body = fcm_error(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.")
        return Response(json.dumps(body), 404, content_type="application/json")
    name = f"projects/{PROJECT}/messages/1"
    return Response(json.dumps({"name": name}), 200, content_type="application/json")


async def test_an_unregistered_token_is_removed(
    httpserver: HTTPServer, tmp_path: Path, private_key: rsa.RSAPrivateKey
) -> None:
    token_uri = httpserver.url_for("/token")
    httpserver.expect_request("/token", method="POST").respond_with_handler(
        TokenEndpoint(private_key, token_uri, 3600)
    )
    httpserver.expect_request(SEND_PATH, method="POST").respond_with_handler(fcm_answers)
    key_file = write_service_account(tmp_path / "sa.json", private_key, token_uri)
    settings = make_settings(
        push_provider="fcm",
        fcm_project_id=PROJECT,
        fcm_credentials_file=str(key_file),
        fcm_base_url=httpserver.url_for("/"),
    )
    key, other = await new_key("a"), await new_key("b")
    async with running_app(settings) as (_, client):
        for k in (key, other):
            await client.put("/v1/recipients/u1", json={}, headers=auth(k))
            for token in (GONE, ALIVE):
                added = await client.post(
                    "/v1/recipients/u1/push-tokens", json={"token": token}, headers=auth(k)
                )
                assert added.status_code == 201
        ids = []
        for token in (GONE, ALIVE):
            sent = await client.post(
                "/v1/notifications",
                json={"channel": "push", "to": token, "body": "Ping"},
                headers=auth(key),
            )
            ids.append(sent.json()["id"])
        failed = await wait_status(client, key, ids[0], ("failed",))
        assert "UNREGISTERED" in failed["error"]
        await wait_status(client, key, ids[1], ("sent",))

        deadline = time.monotonic() + 10
        tokens: list[str] = []
        while time.monotonic() < deadline:
            read = await client.get("/v1/recipients/u1", headers=auth(key))
            tokens = read.json()["push_tokens"]
            if tokens == [ALIVE]:
                break
            await asyncio.sleep(0.05)
        assert tokens == [ALIVE]
        # Another key's recipient with the same token keeps it: the failure was not theirs.
        theirs = await client.get("/v1/recipients/u1", headers=auth(other))
        assert sorted(theirs.json()["push_tokens"]) == sorted([GONE, ALIVE])
    httpserver.check_handler_errors()
