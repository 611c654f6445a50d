"""Push through FCM HTTP v1, authenticated as a service account, over plain httpx.

The service-account JSON is read once. An access token is obtained by signing a short JWT
(RS256) with the account's key and exchanging it at the account's `token_uri`; the token is
cached until 60 s before it expires and shared by all concurrent sends, with a lock so that
only one refresh is in flight. FCM errors name an `errorCode` (UNREGISTERED, QUOTA_EXCEEDED,
...) in `error.details`; a stale token (401) is dropped and the send retried later.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from herald.channels._http import (
    accepted,
    is_transient_status,
    json_object,
    post,
    retry_after,
    snippet,
)
from herald.channels.base import (
    AddressGone,
    Message,
    PermanentError,
    ProviderResult,
    TransientError,
)
from herald.config import SettingsError

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
TOKEN_MARGIN_SECONDS = 60.0
_ASSERTION_LIFETIME = 3600
_FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_TRANSIENT = frozenset({"UNAVAILABLE", "INTERNAL", "QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED"})


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64json(value: dict[str, Any]) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode())


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """The parts of a Google service-account key that FCM authentication needs."""

    client_email: str
    private_key: rsa.RSAPrivateKey
    token_uri: str = DEFAULT_TOKEN_URI
    private_key_id: str | None = None

    @classmethod
    def from_file(cls, path: str) -> ServiceAccount:
        """Load the JSON key file; `SettingsError` naming FCM_CREDENTIALS_FILE if unusable."""
        try:
            with open(path, encoding="utf-8") as file:
                info = json.load(file)
            return cls.from_info(info)
        except (OSError, ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise SettingsError(
                f"invalid setting FCM_CREDENTIALS_FILE={path!r}: not a usable service-account "
                f"key ({exc})"
            ) from None

    @classmethod
    def from_info(cls, info: Any) -> ServiceAccount:
        """Build from the parsed JSON; `ValueError` when a field is missing or the key is bad."""
        if not isinstance(info, dict):
            raise ValueError("expected a JSON object")
        for field in ("client_email", "private_key"):
            if not isinstance(info.get(field), str) or not info[field]:
                raise ValueError(f"{field} is missing")
        key = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("private_key is not an RSA key")
        token_uri = info.get("token_uri")
        key_id = info.get("private_key_id")
        return cls(
            client_email=info["client_email"],
            private_key=key,
            token_uri=token_uri if isinstance(token_uri, str) and token_uri else DEFAULT_TOKEN_URI,
            private_key_id=key_id if isinstance(key_id, str) and key_id else None,
        )

    def assertion(self, now: int) -> str:
        """The signed JWT (RS256) exchanged at `token_uri` for an access token."""
        header: dict[str, Any] = {"alg": "RS256", "typ": "JWT"}
        if self.private_key_id:
            header["kid"] = self.private_key_id
        claims = {
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + _ASSERTION_LIFETIME,
        }
        signing_input = f"{_b64json(header)}.{_b64json(claims)}".encode("ascii")
        signature = self.private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input.decode('ascii')}.{_b64url(signature)}"


class FcmProvider:
    """Sends push notifications with `POST {base}/v1/projects/{project}/messages:send`."""

    name = "fcm"
    channel = "push"

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        project_id: str,
        credentials: ServiceAccount,
        base_url: str = "https://fcm.googleapis.com",
    ) -> None:
        self.client = client
        self.credentials = credentials
        self.url = f"{base_url.rstrip('/')}/v1/projects/{project_id}/messages:send"
        self._token: str | None = None
        self._token_expires_at = 0.0  # time.monotonic() past which the token is not used
        self._token_lock = asyncio.Lock()

    def payload(self, message: Message) -> dict[str, Any]:
        """The v1 request: `subject` is the title, `body` the body, `data` the data payload."""
        notification = {
            key: value
            for key, value in (("title", message.subject), ("body", message.body))
            if value is not None
        }
        if not notification and not message.data:
            raise PermanentError("fcm: push has no title, body or data")
        body: dict[str, Any] = {"token": message.to}
        if notification:
            body["notification"] = notification
        if message.data:
            body["data"] = dict(message.data)
        return {"message": body}

    async def send(self, message: Message) -> ProviderResult:
        """Send one message; the result id is FCM's `name` (projects/.../messages/...)."""
        payload = self.payload(message)
        token = await self.access_token()
        response = await post(
            self.client,
            "fcm",
            self.url,
            json=payload,
            headers={"Authorization": f"Bearer {token}"},
        )
        if response.is_success:
            name = json_object(response).get("name")
            return accepted(response, "fcm", name if isinstance(name, str) else None)
        raise self._error(response, token)

    async def access_token(self) -> str:
        """The cached access token, refreshed (once, whoever asks) when near expiry."""
        if self._token is not None and time.monotonic() < self._token_expires_at:
            return self._token
        async with self._token_lock:
            if self._token is not None and time.monotonic() < self._token_expires_at:
                return self._token
            token, expires_in = await self._fetch_token()
            self._token = token
            self._token_expires_at = time.monotonic() + expires_in - TOKEN_MARGIN_SECONDS
            return token

    async def _fetch_token(self) -> tuple[str, float]:
        assertion = self.credentials.assertion(int(time.time()))
        response = await post(
            self.client,
            "fcm token",
            self.credentials.token_uri,
            data={"grant_type": GRANT_TYPE, "assertion": assertion},
        )
        body = json_object(response)
        if response.is_success:
            token = body.get("access_token")
            expires_in = body.get("expires_in", _ASSERTION_LIFETIME)
            if not isinstance(token, str) or not token:
                raise TransientError("fcm token: the response has no access_token")
            if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
                expires_in = _ASSERTION_LIFETIME
            return token, float(expires_in)
        error = body.get("error")
        label = error if isinstance(error, str) else f"HTTP {response.status_code}"
        detail = body.get("error_description")
        summary = f"fcm token {label}"
        reason = f"{summary}: {detail if isinstance(detail, str) else snippet(response)}"
        if is_transient_status(response.status_code):
            raise TransientError(reason, retry_after=retry_after(response), summary=summary)
        raise PermanentError(reason, summary=summary)

    def _error(self, response: httpx.Response, token: str) -> TransientError | PermanentError:
        error = json_object(response).get("error")
        error = error if isinstance(error, dict) else {}
        status = error.get("status") if isinstance(error.get("status"), str) else None
        code = _fcm_error_code(error) or status
        text = error.get("message")
        summary = f"fcm {code or f'HTTP {response.status_code}'}"
        reason = f"{summary}: " + (text if isinstance(text, str) and text else snippet(response))
        if code == "UNREGISTERED":  # the token is gone for good: recipients forget it
            return AddressGone(reason, summary=summary)
        if code == "THIRD_PARTY_AUTH_ERROR":  # the APNs/web-push credential, not our token
            return PermanentError(reason, summary=summary)
        if response.status_code == 401:
            if self._token == token:  # not one a concurrent send has refreshed meanwhile
                self._token = None
            return TransientError(reason, summary=summary)
        transient = code in _TRANSIENT or status in _TRANSIENT
        if transient or is_transient_status(response.status_code):
            return TransientError(reason, retry_after=retry_after(response), summary=summary)
        return PermanentError(reason, summary=summary)


def _fcm_error_code(error: dict[str, Any]) -> str | None:
    """The FCM-specific `errorCode` (UNREGISTERED, ...) from `error.details`, if present."""
    details = error.get("details")
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict) and detail.get("@type") == _FCM_ERROR_TYPE:
            code = detail.get("errorCode")
            if isinstance(code, str):
                return code
    return None
