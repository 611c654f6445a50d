"""WhatsAppCloudProvider against a stand-in Graph API (pytest-httpserver) on loopback."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer

from herald.channels import Message, PermanentError, TransientError
from herald.channels.whatsapp import WhatsAppCloudProvider
from tests.channels.conftest import free_port

PATH = "/v21.0/106540352242922/messages"
NOTIFICATION_ID = "7a1c2e3f-4b5d-4e6f-8a9b-0c1d2e3f4a5b"
OK = {
    "messaging_product": "whatsapp",
    "contacts": [{"input": "447911123456", "wa_id": "447911123456"}],
    "messages": [{"id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI4Qzc"}],
}


def whatsapp(client: httpx.AsyncClient, base_url: str) -> WhatsAppCloudProvider:
    return WhatsAppCloudProvider(
        client,
        phone_number_id="106540352242922",
        access_token="wa-secret",
        api_version="v21.0",
        base_url=base_url,
    )


def graph_error(code: int, message: str = "Some error") -> dict[str, Any]:
    return {
        "error": {
            "message": f"(#{code}) {message}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": "details here"},
            "fbtrace_id": "AbCdEf",
        }
    }


async def test_text_message(server: HTTPServer, client: httpx.AsyncClient) -> None:
    server.expect_request(PATH, method="POST").respond_with_json(OK)
    message = Message(NOTIFICATION_ID, "whatsapp", "+447911123456", body="Hello there")

    result = await whatsapp(client, server.url_for("/")).send(message)

    assert result.provider_message_id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI4Qzc"
    request, _ = server.log[0]
    assert (request.method, request.path) == ("POST", PATH)
    assert request.headers["Authorization"] == "Bearer wa-secret"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.get_data()) == {
        "messaging_product": "whatsapp",
        "to": "447911123456",
        "type": "text",
        "text": {"body": "Hello there"},
    }


async def test_template_message(server: HTTPServer, client: httpx.AsyncClient) -> None:
    server.expect_request(PATH, method="POST").respond_with_json(OK)
    template = {"name": "order_shipped", "language": "en_GB", "parameters": ["Jane", "A-42"]}
    message = Message(NOTIFICATION_ID, "whatsapp", "+447911123456", template=template)

    await whatsapp(client, server.url_for("/")).send(message)

    assert json.loads(server.log[0][0].get_data()) == {
        "messaging_product": "whatsapp",
        "to": "447911123456",
        "type": "template",
        "template": {
            "name": "order_shipped",
            "language": {"code": "en_GB"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Jane"},
                        {"type": "text", "text": "A-42"},
                    ],
                }
            ],
        },
    }


@pytest.mark.parametrize("code", [131026, 131047, 132000, 132001, 100, 131030, 190])
async def test_refusals_are_permanent_and_name_the_code(
    server: HTTPServer, client: httpx.AsyncClient, code: int
) -> None:
    status = 401 if code == 190 else 400
    server.expect_request(PATH).respond_with_json(graph_error(code), status=status)
    message = Message(NOTIFICATION_ID, "whatsapp", "+447911123456", body="Hi")

    with pytest.raises(PermanentError) as caught:
        await whatsapp(client, server.url_for("/")).send(message)

    assert caught.value.reason.startswith(f"whatsapp {code}: (#{code}) Some error")
    assert "details here" in caught.value.reason


@pytest.mark.parametrize(
    ("code", "status"), [(130429, 400), (131056, 400), (80007, 400), (4, 400), (131000, 500)]
)
async def test_throttling_and_outages_are_transient(
    server: HTTPServer, client: httpx.AsyncClient, code: int, status: int
) -> None:
    server.expect_request(PATH).respond_with_json(
        graph_error(code), status=status, headers={"Retry-After": "30"}
    )
    message = Message(NOTIFICATION_ID, "whatsapp", "+447911123456", body="Hi")

    with pytest.raises(TransientError) as caught:
        await whatsapp(client, server.url_for("/")).send(message)

    assert caught.value.retry_after == 30
    assert caught.value.reason.startswith(f"whatsapp {code}:")


@pytest.mark.parametrize("status", [429, 502, 503])
async def test_statuses_without_a_graph_error_are_transient(
    server: HTTPServer, client: httpx.AsyncClient, status: int
) -> None:
    server.expect_request(PATH).respond_with_data("<html>Bad gateway</html>", status=status)
    message = Message(NOTIFICATION_ID, "whatsapp", "+447911123456", body="Hi")

    with pytest.raises(TransientError, match=f"whatsapp HTTP {status}"):
        await whatsapp(client, server.url_for("/")).send(message)


async def test_connection_refused_is_transient(client: httpx.AsyncClient) -> None:
    message = Message(NOTIFICATION_ID, "whatsapp", "+447911123456", body="Hi")

    with pytest.raises(TransientError, match="whatsapp: ConnectError"):
        await whatsapp(client, f"http://127.0.0.1:{free_port()}").send(message)


@pytest.mark.parametrize(
    "template", [None, {"name": "x"}, {"name": "x", "language": "en", "parameters": "oops"}]
)
async def test_unsendable_messages_are_permanent_without_a_request(
    client: httpx.AsyncClient, template: dict[str, Any] | None
) -> None:
    message = Message(NOTIFICATION_ID, "whatsapp", "+447911123456", template=template)

    with pytest.raises(PermanentError):
        await whatsapp(client, f"http://127.0.0.1:{free_port()}").send(message)
