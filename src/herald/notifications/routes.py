"""`/v1/notifications`: submit, read, list and cancel notifications.

Handlers are the transaction boundary: they commit, then enqueue the delivery jobs. If the
enqueue fails (Redis down) the notifications are already stored and the reconciler delivers
them when Redis is back, so the client still gets its 202.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import msgspec
import structlog
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from herald.auth.keys import KeyAuthenticator, Principal
from herald.errors import BadRequest, ValidationFailed
from herald.notifications import idempotency, nesting
from herald.notifications.schemas import (
    BatchIn,
    BatchOut,
    NotificationIn,
    NotificationList,
    NotificationOut,
    Problem,
)
from herald.notifications.service import (
    accepted_events,
    cancel_notification,
    create_notifications,
    enqueue_deliveries,
    list_notifications,
    read_notification,
    to_out,
)
from herald.notifications.validation import validate_batch, validate_one
from herald.resources import Resources

log = structlog.get_logger()

_PROBLEMS = {
    status: ResponseSpec(
        data_container=Problem, description=description, media_type="application/problem+json"
    )
    for status, description in {
        400: "Malformed JSON, a wrong type, an unknown field, or JSON nested more than "
        f"{nesting.MAX_DEPTH} levels deep in a field.",
        401: "Missing, unknown or revoked API key.",
        409: "Conflict (see detail).",
        413: "Request body over 1 MiB.",
        415: "Content type is not application/json.",
        422: "A field breaks a rule; `errors` names each one.",
        503: "Postgres or Redis is unavailable; nothing was stored.",
    }.items()
}


def _responses(*statuses: int) -> dict[int, ResponseSpec]:
    return {status: _PROBLEMS[status] for status in statuses}


async def provide_principal(request: Request[Any, Any, State]) -> Principal:
    authenticator: KeyAuthenticator = request.app.state.authenticator
    return await authenticator.authenticate(request.headers.get("authorization"))


async def provide_session(state: State) -> AsyncIterator[AsyncSession]:
    resources: Resources = state.resources
    async with resources.session_maker() as session:
        yield session


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
            raise BadRequest(f"{field}: {message}", errors=[{"field": field, "message": message}])

    return check


async def _submit(
    request: Request[Any, Any, State],
    principal: NamedDependency[Principal],
    session: NamedDependency[AsyncSession],
    items: list[NotificationIn],
    idempotency_key: str | None,
    *,
    batch: bool,
) -> Response[Any]:
    resources: Resources = request.app.state.resources
    settings = resources.settings
    claimed: str | None = None
    if idempotency_key is not None:
        key = idempotency.check_key(idempotency_key)
        fingerprint = idempotency.request_fingerprint(
            "POST", request.url.path, msgspec.json.encode(items, order="sorted")
        )
        stored = await idempotency.claim(
            resources.session_maker, principal, key, fingerprint, settings.idempotency_ttl_seconds
        )
        if stored is not None:
            return Response(
                stored.body,
                status_code=stored.status,
                media_type="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
        claimed = key
    try:
        notifications = await create_notifications(session, principal, items, settings.max_attempts)
        out = [to_out(n, events=accepted_events(n)) for n in notifications]
        body = msgspec.json.encode(BatchOut(out) if batch else out[0])
        if claimed is not None:
            stored_response = idempotency.StoredResponse(202, body)
            await idempotency.store_response(session, principal, claimed, stored_response)
        await session.commit()
    except BaseException:
        if claimed is not None:
            await session.rollback()
            await idempotency.release(resources.session_maker, principal, claimed)
        raise
    await enqueue_deliveries(resources.jobs, notifications)
    return Response(body, status_code=202, media_type="application/json")


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
    dependencies = {
        "principal": Provide(provide_principal),
        "session": Provide(provide_session),
    }

    @post(
        "/",
        status_code=202,
        summary="Send a notification",
        before_request=require_json(envelope=1),
        responses=_responses(400, 401, 409, 413, 415, 422, 503),
    )
    async def create(
        self,
        request: Request[Any, Any, State],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        data: JSONBody[NotificationIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[NotificationOut]:
        """Store the notification and queue its delivery; 202 with its status `queued` or
        `scheduled`."""
        errors = validate_one(data)
        if errors:
            raise ValidationFailed(_summary(errors), errors=errors)
        return await _submit(request, principal, session, [data], idempotency_key, batch=False)

    @post(
        "/batch",
        status_code=202,
        summary="Send up to 1000 notifications at once",
        before_request=require_json(envelope=3),
        responses=_responses(400, 401, 409, 413, 415, 422, 503),
    )
    async def create_batch(
        self,
        request: Request[Any, Any, State],
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        data: JSONBody[BatchIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[BatchOut]:
        """All or nothing: one bad item is a 422 naming every bad item, and nothing is
        stored."""
        errors = validate_batch(data.notifications)
        if errors:
            raise ValidationFailed(_summary(errors), errors=errors)
        return await _submit(
            request, principal, session, data.notifications, idempotency_key, batch=True
        )

    @get("/{notification_id:uuid}", summary="Read a notification", responses=_responses(401))
    async def read(
        self,
        state: State,
        principal: NamedDependency[Principal],
        notification_id: FromPath[uuid.UUID],
    ) -> NotificationOut:
        """The notification with its status, attempts, provider result and every event."""
        # Reads are one statement, outside a transaction. The connection is opened here, not
        # taken as a second dependency: Litestar resolves several in a task group (~10% of a
        # read's CPU).
        resources: Resources = state.resources
        async with resources.autocommit_engine.connect() as connection:
            return await read_notification(connection, principal, notification_id)

    @get("/", summary="List notifications", responses=_responses(400, 401))
    async def list_(
        self,
        state: State,
        principal: NamedDependency[Principal],
        status: Annotated[
            str | None,
            QueryParameter(
                description="Only this status.",
                examples=[Example(value="failed")],
                pattern="^(scheduled|queued|sending|retrying|sent|delivered|failed|cancelled)$",
            ),
        ] = None,
        channel: Annotated[
            str | None,
            QueryParameter(description="Only this channel.", pattern="^(email|sms|push|whatsapp)$"),
        ] = None,
        reference: Annotated[
            str | None,
            QueryParameter(
                description="Only this reference.", max_length=255, pattern="^[^\\x00]*$"
            ),
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200, description="Page size.")] = 50,
        cursor: Annotated[
            str | None,
            QueryParameter(description="`next_cursor` of the previous page.", max_length=200),
        ] = None,
    ) -> NotificationList:
        """Newest first, with cursor pagination that stays stable while new ones arrive."""
        resources: Resources = state.resources
        async with resources.autocommit_engine.connect() as connection:
            rows, next_cursor = await list_notifications(
                connection,
                principal,
                status=status,
                channel=channel,
                reference=reference,
                limit=limit,
                cursor=cursor,
            )
        return NotificationList(items=[to_out(n) for n in rows], next_cursor=next_cursor)

    @post(
        "/{notification_id:uuid}/cancel",
        status_code=200,
        summary="Cancel a notification",
        responses=_responses(401, 409),
    )
    async def cancel(
        self,
        principal: NamedDependency[Principal],
        session: NamedDependency[AsyncSession],
        notification_id: FromPath[uuid.UUID],
    ) -> NotificationOut:
        """Cancel it if it has not been handed to a provider yet; 409 otherwise."""
        cancelled = await cancel_notification(session, principal, notification_id)
        await session.commit()
        return cancelled


def _summary(errors: list[dict[str, Any]]) -> str:
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{first['field']} {first['message']}{more}"
