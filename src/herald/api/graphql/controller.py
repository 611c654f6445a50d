"""`/graphql` on Litestar: POST (and GET or GraphiQL when a setting allows), and WebSocket with
`graphql-transport-ws` only (the legacy `graphql-ws` protocol is off)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, ClassVar

from litestar import Request, Response, WebSocket, get, post, websocket
from litestar.background_tasks import BackgroundTasks
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException, ValidationException
from litestar.types import Dependencies
from strawberry.exceptions import ConnectionRejectionError
from strawberry.litestar import make_graphql_controller
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from herald.api.graphql.context import Context, authorization_from, get_context
from herald.api.graphql.schema import build_schema
from herald.config import Settings
from herald.errors import HeraldError
from herald.notifications import nesting

PATH = "/graphql"
# Steps from the body to an input field: variables.inputs[i].metadata, and one to spare for
# nested input objects; deeper JSON is refused before it is decoded.
ENVELOPE = 5


def _too_deep(data: str | bytes) -> list[str | int] | None:
    raw = data.encode() if isinstance(data, str) else data
    return nesting.too_deep_in_body(raw, ENVELOPE)


def _bad_input(path: list[str | int]) -> dict[str, Any]:
    # The field: up to the third name (variables.input.metadata, variables.inputs[2].metadata).
    steps: list[str] = []
    names = 0
    for step in path:
        steps.append(f"[{step}]" if isinstance(step, int) else ("." if steps else "") + step)
        names += isinstance(step, str)
        if names == 3:
            break
    field = "".join(steps) or "(body)"
    message = f"{field} is nested more than {nesting.MAX_DEPTH} levels deep"
    extensions = {"code": "BAD_USER_INPUT", "field": field}
    return {"errors": [{"message": message, "extensions": extensions}]}


async def _scan_body(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """Before strawberry decodes the body: JSON nested too deep is refused (the decoder
    recurses), as REST does."""
    if request.method != "POST":
        return None
    path = _too_deep(await request.body())
    if path is None:
        return None
    return Response(_bad_input(path), status_code=400)


async def _http_context(
    request: Request[Any, Any, Any], response: NamedDependency[Response[Any]]
) -> Context:
    context = await get_context(request.scope, request.app.state)
    context.request, context.response = request, response
    return context


async def _ws_context(socket: WebSocket[Any, Any, Any]) -> Context:
    context = await get_context(socket.scope, socket.app.state)
    context.websocket = socket
    return context


async def _no_root_value() -> None:
    return None


def _response() -> Response[Any]:
    return Response({}, background=BackgroundTasks([]))


def graphql_controller(settings: Settings) -> type:
    base = make_graphql_controller(
        build_schema(
            settings.graphql_max_depth, settings.graphql_max_tokens, settings.graphql_max_aliases
        ),
        path=PATH,
        graphql_ide="graphiql" if settings.graphql_ide else None,
        allow_queries_via_get=settings.graphql_allow_get,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        connection_init_wait_timeout=timedelta(seconds=10),
        keep_alive=True,
        keep_alive_interval=15,
        max_subscriptions_per_connection=20,
    )

    class GraphQLController(base):  # type: ignore[valid-type,misc]
        before_request = _scan_body
        include_in_schema = False
        dependencies: ClassVar[Dependencies] = {
            "context": Provide(_http_context),
            "context_ws": Provide(_ws_context),
            "root_value": Provide(_no_root_value),
            "response": Provide(_response, sync_to_thread=False),
        }

        # strawberry's handlers, with their dependencies marked (Litestar deprecates inferring
        # them, and the suite turns warnings into errors).
        @get(raises=[ValidationException, NotFoundException], include_in_schema=False)
        async def handle_http_get(
            self,
            request: Request[Any, Any, Any],
            context: NamedDependency[Any],
            root_value: NamedDependency[Any],
            response: NamedDependency[Response[Any]],
        ) -> Response[Any]:
            self.temporal_response = response
            return await self.execute_request(request, context, root_value)  # type: ignore[no-any-return]

        @post(status_code=200, include_in_schema=False)
        async def handle_http_post(
            self,
            request: Request[Any, Any, Any],
            context: NamedDependency[Any],
            root_value: NamedDependency[Any],
            response: NamedDependency[Response[Any]],
        ) -> Response[Any]:
            self.temporal_response = response
            return await self.execute_request(request, context, root_value)  # type: ignore[no-any-return]

        @websocket()
        async def websocket_endpoint(
            self,
            socket: WebSocket[Any, Any, Any],
            context_ws: NamedDependency[Any],
            root_value: NamedDependency[Any],
        ) -> None:
            await self.run(request=socket, context=context_ws, root_value=root_value)

        def decode_json(self, data: str | bytes) -> object:
            # WebSocket messages come here undecoded: the same nesting limit first.
            if _too_deep(data) is not None:
                raise json.JSONDecodeError("nested too deep", "", 0)
            return super().decode_json(data)

        async def on_ws_connect(self, context: Context) -> None:
            """Authenticate the `connection_init` payload; a bad key closes with 4403."""
            context.authorization = authorization_from(context.connection_params)
            try:
                await context.principal()
            except HeraldError:
                raise ConnectionRejectionError from None

    return GraphQLController
