"""`/v1/notifications`: submit, read, list and cancel notifications, over the use cases.

Each handler decodes the request, calls one use case and encodes its result; errors are
domain errors, rendered in one place (`herald.api.rest.problems`).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import structlog
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException
from litestar.openapi.spec import Example
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter

from herald.api.rest.problems import responses
from herald.api.rest.schemas import BatchIn, BatchOut
from herald.auth.keys import KeyAuthenticator, Principal
from herald.errors import FieldProblem, InvalidInput
from herald.notifications import nesting
from herald.notifications.model import Notification, NotificationInput, NotificationPage
from herald.notifications.use_cases import NotificationUseCases, Submitted
from herald.notifications.validation import MAX_PAGE, MAX_REFERENCE
from herald.resources import Resources
from herald.vocabulary import Channel, Status

log = structlog.get_logger()


async def provide_principal(request: Request[Any, Any, State]) -> Principal:
    authenticator: KeyAuthenticator = request.app.state.authenticator
    return await authenticator.authenticate(request.headers.get("authorization"))


def use_cases(state: State) -> NotificationUseCases:
    resources: Resources = state.resources
    return resources.use_cases


def require_json(envelope: int) -> Callable[[Request[Any, Any, Any]], Awaitable[None]]:
    """Before the body is decoded: anything but application/json is 415, and JSON nested
    deeper than the limit is 400 naming the field, found without recursion (a deep body would
    otherwise overflow the decoder's stack). `envelope`: path steps from the body to a field."""

    async def check(request: Request[Any, Any, Any]) -> None:
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise HTTPException(
                status_code=415,
                detail=f"Send the body as application/json, not {content_type or 'nothing'}.",
            )
        path = nesting.too_deep_in_body(await request.body(), envelope)
        if path is not None:
            field = nesting.field_name(path, envelope)
            message = f"is nested more than {nesting.MAX_DEPTH} levels deep"
            raise InvalidInput(f"{field}: {message}", problems=[FieldProblem(field, message)])

    return check


def _accepted(submitted: Submitted, *, batch: bool) -> Response[Any]:
    body = BatchOut(submitted.notifications) if batch else submitted.notifications[0]
    headers = {"Idempotent-Replayed": "true"} if submitted.replayed else None
    return Response(body, status_code=202, headers=headers)


IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        description="Repeat-safe submission: the same key and body return the first response.",
    ),
]


class NotificationController(Controller):
    path = "/v1/notifications"
    tags = ["notifications"]
    # Only these routes need a key: the health routes have none in the document.
    security = [{"bearer": []}]
    dependencies = {"principal": Provide(provide_principal)}

    @post(
        "/",
        status_code=202,
        summary="Send a notification",
        before_request=require_json(envelope=1),
        responses=responses(400, 401, 409, 413, 415, 422, 503),
    )
    async def create(
        self,
        state: State,
        principal: NamedDependency[Principal],
        data: JSONBody[NotificationInput],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Notification]:
        """Store the notification and queue its delivery; 202 with its status `queued` or
        `scheduled`."""
        submitted = await use_cases(state).send_notification(
            principal, data, idempotency_key=idempotency_key
        )
        return _accepted(submitted, batch=False)

    @post(
        "/batch",
        status_code=202,
        summary="Send up to 1000 notifications at once",
        before_request=require_json(envelope=3),
        responses=responses(400, 401, 409, 413, 415, 422, 503),
    )
    async def create_batch(
        self,
        state: State,
        principal: NamedDependency[Principal],
        data: JSONBody[BatchIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[BatchOut]:
        """All or nothing: one bad item is a 422 naming every bad item, and nothing is
        stored."""
        submitted = await use_cases(state).send_notifications(
            principal, data.notifications, idempotency_key=idempotency_key
        )
        return _accepted(submitted, batch=True)

    @get(
        "/{notification_id:uuid}",
        summary="Read a notification",
        responses=responses(401, 404, 503),
    )
    async def read(
        self,
        state: State,
        principal: NamedDependency[Principal],
        notification_id: FromPath[uuid.UUID],
    ) -> Notification:
        """The notification with its status, attempts, provider result and every event."""
        return await use_cases(state).get_notification(principal, notification_id)

    @get("/", summary="List notifications", responses=responses(400, 401, 503))
    async def list_(
        self,
        state: State,
        principal: NamedDependency[Principal],
        status: Annotated[
            Status | None,
            QueryParameter(description="Only this status.", examples=[Example(value="failed")]),
        ] = None,
        channel: Annotated[Channel | None, QueryParameter(description="Only this channel.")] = None,
        reference: Annotated[
            str | None,
            QueryParameter(
                description="Only this reference.", max_length=MAX_REFERENCE, pattern="^[^\\x00]*$"
            ),
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE, description="Page size.")] = 50,
        cursor: Annotated[
            str | None,
            QueryParameter(description="`next_cursor` of the previous page.", max_length=200),
        ] = None,
    ) -> NotificationPage:
        """Newest first, with cursor pagination that stays stable while new ones arrive."""
        return await use_cases(state).list_notifications(
            principal,
            status=status,
            channel=channel,
            reference=reference,
            limit=limit,
            cursor=cursor,
        )

    @post(
        "/{notification_id:uuid}/cancel",
        status_code=200,
        summary="Cancel a notification",
        responses=responses(401, 404, 409, 503),
    )
    async def cancel(
        self,
        state: State,
        principal: NamedDependency[Principal],
        notification_id: FromPath[uuid.UUID],
    ) -> Notification:
        """Cancel it if it has not been handed to a provider yet; 409 otherwise."""
        return await use_cases(state).cancel_notification(principal, notification_id)
