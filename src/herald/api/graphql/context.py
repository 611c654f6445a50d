"""The typed context of one GraphQL operation, the same for HTTP and WebSocket.

It carries the process's resources, the caller's principal (from `Authorization: Bearer` on
HTTP, from the `connection_init` payload on WebSocket) and the DataLoaders: one context per
HTTP request, one per WebSocket connection (so the loaders batch but do not cache).
"""

from __future__ import annotations

from typing import Any

from litestar.datastructures import State
from litestar.types import Scope
from strawberry.litestar.controller import BaseContext
from strawberry.types import Info as StrawberryInfo

from herald.api.graphql.loaders import Loaders
from herald.auth.keys import Principal
from herald.errors import Unauthenticated
from herald.messages.recipient_use_cases import RecipientUseCases
from herald.notifications.use_cases import NotificationUseCases
from herald.resources import Resources


class Context(BaseContext, kw_only=True):
    resources: Resources
    authorization: str | None = None
    connection_params: dict[str, Any] | None = None
    principal_: Principal | None = None
    loaders_: Loaders | None = None

    @property
    def use_cases(self) -> NotificationUseCases:
        return self.resources.use_cases

    @property
    def recipients(self) -> RecipientUseCases:
        return self.resources.recipients

    async def principal(self) -> Principal:
        """The caller, authenticated once per operation (per connection on WebSocket)."""
        if self.principal_ is None:
            if self.websocket is not None and self.authorization is None:
                raise Unauthenticated("Send your API key in the connection_init payload.")
            self.principal_ = await self.resources.authenticator.authenticate(self.authorization)
        return self.principal_

    async def loaders(self) -> Loaders:
        if self.loaders_ is None:
            self.loaders_ = Loaders(self.use_cases, await self.principal())
        return self.loaders_


Info = StrawberryInfo[Context, None]


async def get_context(scope: Scope, state: State) -> Context:
    """One getter for HTTP and WebSocket: branch on the scope type."""
    resources: Resources = state.resources
    if str(scope["type"]) == "websocket":
        return Context(resources=resources)
    headers = dict(scope["headers"])
    raw = headers.get(b"authorization")
    return Context(resources=resources, authorization=raw.decode("latin-1") if raw else None)


def authorization_from(params: object) -> str | None:
    """The API key in a `connection_init` payload: `{"Authorization": "Bearer <key>"}` (any
    case), or `{"apiKey": "<key>"}`."""
    if not isinstance(params, dict):
        return None
    for name, value in params.items():
        if isinstance(name, str) and isinstance(value, str):
            if name.lower() == "authorization":
                return value
            if name in ("apiKey", "api_key"):
                return f"Bearer {value}"
    return None
