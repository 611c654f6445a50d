"""SMS through Twilio's Messages API (or anything that speaks it), over plain httpx.

Twilio answers errors with JSON `{"code": 21211, "message": "...", "status": 400}`. A 4xx
means this request will never succeed as sent (invalid or unsubscribed number, region not
enabled, bad credentials); 429 and 5xx are retried, honouring Retry-After. The notification id
goes in `I-Twilio-Idempotency-Token`, so a retry after a lost response does not send twice.
"""

from __future__ import annotations

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

# Twilio's own "too many requests" code; it comes with HTTP 429 but is retryable whatever status.
_TRANSIENT_CODES = frozenset({20429})


class TwilioProvider:
    """Sends SMS with `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`."""

    name = "twilio"
    channel = "sms"

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        account_sid: str,
        auth_token: str,
        sender: str,
        base_url: str = "https://api.twilio.com",
    ) -> None:
        self.client = client
        self.account_sid = account_sid
        self.auth = httpx.BasicAuth(account_sid, auth_token)
        self.sender = sender
        self.url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"

    def form(self, message: Message) -> dict[str, str]:
        """The form fields; a sender starting with `MG` is a Messaging Service SID."""
        if not message.body:
            raise PermanentError("twilio: sms has no body")
        sender_field = "MessagingServiceSid" if self.sender.startswith("MG") else "From"
        return {"To": message.to, sender_field: self.sender, "Body": message.body}

    async def send(self, message: Message) -> ProviderResult:
        """Create the message at Twilio; the result id is Twilio's message `sid`."""
        response = await post(
            self.client,
            "twilio",
            self.url,
            data=self.form(message),
            auth=self.auth,
            headers={"I-Twilio-Idempotency-Token": message.notification_id},
        )
        if response.is_success:
            sid = json_object(response).get("sid")
            return accepted(response, "twilio", sid if isinstance(sid, str) else None)
        raise _error(response)


def _error(response: httpx.Response) -> TransientError | PermanentError:
    body = json_object(response)
    code = body.get("code")
    text = body.get("message")
    if code is not None and isinstance(text, str):
        summary = f"twilio {code}"
        reason = f"{summary}: {text}"
    else:
        summary = f"twilio HTTP {response.status_code}"
        reason = f"{summary}: {snippet(response)}"
    if code in _TRANSIENT_CODES or is_transient_status(response.status_code):
        return TransientError(reason, retry_after=retry_after(response), summary=summary)
    return PermanentError(reason, summary=summary)
