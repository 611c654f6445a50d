"""WhatsApp through Meta's Cloud API (Graph API), over plain httpx.

Graph errors carry a numeric `error.code`, which Meta recommends acting on rather than the
HTTP status: throttling codes (130429, 131056, 80007, 4, ...) and temporary outages are
retried even when they arrive as 400; known per-message refusals (undeliverable, outside
the 24-hour window, template problems) and any other 4xx are permanent; 429 and 5xx retried.
"""

from __future__ import annotations

from typing import Any

import httpx

from herald.channels._http import (
    accepted,
    is_transient_status,
    json_object,
    post,
    retry_after,
    snippet,
)
from herald.channels.base import Message, PermanentError, ProviderResult, TransientError

# Throttling (4, 80007, 130429, 131048, 131056) and temporary trouble on Meta's side
# (1, 2, 131000, 131016, 133004).
TRANSIENT_CODES = frozenset({1, 2, 4, 80007, 130429, 131000, 131016, 131048, 131056, 133004})
# Refusals of this message whatever the HTTP status: invalid parameter, recipient not allowed,
# undeliverable, outside the customer-service window, template missing or its parameters wrong.
PERMANENT_CODES = frozenset({100, 131026, 131030, 131047, 132000, 132001})


class WhatsAppCloudProvider:
    """Sends with `POST {base}/{version}/{phone_number_id}/messages`, bearer token."""

    name = "meta"
    channel = "whatsapp"

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        phone_number_id: str,
        access_token: str,
        api_version: str = "v21.0",
        base_url: str = "https://graph.facebook.com",
    ) -> None:
        self.client = client
        self.url = f"{base_url.rstrip('/')}/{api_version.strip('/')}/{phone_number_id}/messages"
        self._headers = {"Authorization": f"Bearer {access_token}"}

    def payload(self, message: Message) -> dict[str, Any]:
        """A template message when `template` is given, a text message otherwise."""
        body: dict[str, Any] = {"messaging_product": "whatsapp", "to": message.to.lstrip("+")}
        if message.template is not None:
            body["type"] = "template"
            body["template"] = _template(message.template)
        elif message.body:
            body["type"] = "text"
            body["text"] = {"body": message.body}
        else:
            raise PermanentError("whatsapp: message has neither a body nor a template")
        return body

    async def send(self, message: Message) -> ProviderResult:
        """Send one message; the result id is `messages[0].id` (a `wamid.` id)."""
        response = await post(
            self.client, "whatsapp", self.url, json=self.payload(message), headers=self._headers
        )
        if response.is_success:
            return accepted(response, "whatsapp", _message_id(json_object(response)))
        raise _error(response)


def _template(template: dict[str, Any]) -> dict[str, Any]:
    name = template.get("name")
    language = template.get("language")
    parameters = template.get("parameters") or []
    if not isinstance(name, str) or not name or not isinstance(language, str) or not language:
        raise PermanentError("whatsapp: template needs a name and a language")
    if not isinstance(parameters, list):
        raise PermanentError("whatsapp: template parameters must be a list of strings")
    result: dict[str, Any] = {"name": name, "language": {"code": language}}
    if parameters:
        values = [{"type": "text", "text": str(value)} for value in parameters]
        result["components"] = [{"type": "body", "parameters": values}]
    return result


def _message_id(body: dict[str, Any]) -> str | None:
    messages = body.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        value = messages[0].get("id")
        return value if isinstance(value, str) else None
    return None


def _error(response: httpx.Response) -> TransientError | PermanentError:
    error = json_object(response).get("error")
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    text = error.get("message")
    data = error.get("error_data")
    details = data.get("details") if isinstance(data, dict) else None
    if isinstance(text, str) and text:
        detail = f"{text} ({details})" if isinstance(details, str) and details else text
    else:
        detail = snippet(response)
    summary = f"whatsapp {code if code is not None else f'HTTP {response.status_code}'}"
    reason = f"{summary}: {detail}"
    if code in TRANSIENT_CODES or (
        code not in PERMANENT_CODES and is_transient_status(response.status_code)
    ):
        return TransientError(reason, retry_after=retry_after(response), summary=summary)
    return PermanentError(reason, summary=summary)
