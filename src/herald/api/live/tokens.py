"""Stream tokens: a browser's way onto the live stream without its API key in a URL.

`POST /v1/stream-tokens` (with the API key in the header, from the browser's backend or the
page's own fetch) returns a random token that opens one stream within `TOKEN_TTL` seconds.
Tokens live in Redis (so any replica accepts them), hashed, and are spent on first use.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from litestar import Request, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from herald.api.rest.notifications import provide_principal
from herald.api.rest.problems import responses
from herald.auth.keys import Principal
from herald.resources import Resources

TOKEN_TTL = 60
_PREFIX = "herald:stream-token:"


class StreamToken(msgspec.Struct):
    """Open `/v1/notifications/stream?token=<token>` before `expires_at`; it works once."""

    token: str
    expires_at: datetime
    expires_in: int


def _key(token: str) -> str:
    return _PREFIX + hashlib.sha256(token.encode()).hexdigest()


async def issue(resources: Resources, principal: Principal) -> StreamToken:
    token = "st_" + secrets.token_urlsafe(32)
    await resources.redis.set(_key(token), f"{principal.id}|{principal.name}", ex=TOKEN_TTL)
    return StreamToken(
        token=token,
        expires_at=datetime.now(UTC) + timedelta(seconds=TOKEN_TTL),
        expires_in=TOKEN_TTL,
    )


async def redeem(resources: Resources, token: str) -> Principal | None:
    """The principal a token was issued to, once; None for an unknown, spent or old token."""
    if not token.startswith("st_") or len(token) > 100:
        return None
    raw: Any = await resources.redis.getdel(_key(token))
    if raw is None:
        return None
    ident, _, name = (raw.decode() if isinstance(raw, bytes) else str(raw)).partition("|")
    return Principal(uuid.UUID(ident), name)


@post(
    "/v1/stream-tokens",
    status_code=201,
    summary="Get a short-lived token for the live stream (for browsers)",
    tags=["live"],
    security=[{"bearer": []}],
    dependencies={"principal": Provide(provide_principal)},
    responses=responses(401, 503),
)
async def create_stream_token(
    request: Request[Any, Any, State], principal: NamedDependency[Principal]
) -> StreamToken:
    """A token that opens `/v1/notifications/stream` once, within a minute, so a browser never
    puts the API key in a URL."""
    return await issue(request.app.state.resources, principal)
