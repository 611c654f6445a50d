"""What the HTTP providers share: one POST that maps network failures, and response parsing."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from herald.channels.base import ProviderResult, TransientError


def is_transient_status(status: int) -> bool:
    """Statuses worth retrying: request timeout, rate limited, and any server error."""
    return status in (408, 429) or status >= 500


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date), if any."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The response body as a JSON object, or `{}` when it is not one."""
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def accepted(response: httpx.Response, provider: str, message_id: str | None) -> ProviderResult:
    """A 2xx: the message is the provider's now, whatever its body says.

    Recorded as sent even when the body is not the documented JSON (an HTML page from a
    proxy, say) because sending again could deliver it twice; the missing message id is
    reported as a warning instead. The body itself is never kept: it may echo the message.
    """
    if message_id is not None:
        return ProviderResult(provider_message_id=message_id)
    kind = response.headers.get("content-type", "no content type").split(";")[0]
    return ProviderResult(
        provider_message_id=None,
        warning=f"{provider} answered {response.status_code} but its body ({kind}) was not the "
        "documented JSON: no provider message id",
    )


def snippet(response: httpx.Response, limit: int = 200) -> str:
    """The start of a response body, for error reasons when the body is not the expected JSON."""
    text = " ".join(response.text.split())
    return text[:limit] or response.reason_phrase or "no body"


async def post(client: httpx.AsyncClient, provider: str, url: str, **kwargs: Any) -> httpx.Response:
    """POST, turning connection failures and timeouts into `TransientError`."""
    try:
        return await client.post(url, **kwargs)
    except httpx.TransportError as exc:
        detail = str(exc) or "no detail"
        raise TransientError(f"{provider}: {type(exc).__name__}: {detail}") from exc
