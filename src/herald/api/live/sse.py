"""`GET /v1/notifications/{id}/events` as Server-Sent Events (`Accept: text/event-stream`).

Each event is `event: status`, `id: <sequence>`, `data: {notification_id, status, attempt,
detail, sequence, at}`. A client reconnecting with `Last-Event-ID` resumes after that
sequence, read from the events table (the truth), not from memory; a gap in the live feed is
filled the same way. Idle streams get a `: heartbeat` comment every
`STREAM_HEARTBEAT_SECONDS`; the stream ends after a final status, or when the process drains.
Authenticate with the Authorization header, or `?token=` from `POST /v1/stream-tokens`
(EventSource cannot send headers).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Request, get
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.response import ServerSentEvent, ServerSentEventMessage

from herald.api.live.tokens import redeem
from herald.api.live.watch import Watch
from herald.api.rest.problems import responses
from herald.auth.keys import Principal
from herald.errors import Unauthenticated
from herald.notifications.events import StatusEvent
from herald.notifications.model import Event
from herald.resources import Resources
from herald.vocabulary import FINISHED, Status

_encode = msgspec.json.Encoder().encode


async def _principal(request: Request[Any, Any, State], resources: Resources) -> Principal:
    token = request.query_params.get("token")
    if token:
        principal = await redeem(resources, token)
        if principal is None:
            raise Unauthenticated("This stream token is unknown, spent or expired.")
        return principal
    return await resources.authenticator.authenticate(request.headers.get("authorization"))


def _last_event_id(request: Request[Any, Any, State]) -> int:
    raw = request.headers.get("last-event-id", "0").strip() or "0"
    try:
        return max(0, int(raw))
    except ValueError:
        return 0


def _message(notification_id: uuid.UUID, event: Event) -> ServerSentEventMessage:
    data = {"notification_id": str(notification_id), **msgspec.structs.asdict(event)}
    return ServerSentEventMessage(
        data=_encode(data).decode(), event="status", id=event.sequence or 0
    )


@get(
    "/v1/notifications/{notification_id:uuid}/events",
    summary="Follow a notification's status as Server-Sent Events",
    tags=["live"],
    security=[{"bearer": []}],
    media_type="text/event-stream",
    responses=responses(401, 404, 406, 503),
)
async def notification_events(
    request: Request[Any, Any, State], notification_id: FromPath[uuid.UUID]
) -> ServerSentEvent:
    """Every status event of the notification, resuming after `Last-Event-ID` (a sequence),
    until a final status."""
    if "text/event-stream" not in request.headers.get("accept", ""):
        raise HTTPException(status_code=406, detail="Send Accept: text/event-stream.")
    resources: Resources = request.app.state.resources
    principal = await _principal(request, resources)
    after = _last_event_id(request)
    # NotFound (another key's, or none) is a 404 before the stream starts.
    await resources.use_cases.get_notification(principal, notification_id)
    heartbeat = resources.settings.stream_heartbeat_seconds

    async def stream() -> AsyncIterator[ServerSentEventMessage]:
        last, key = after, str(notification_id)
        owner = str(principal.owner)
        async with Watch(
            resources, owner, lambda e: e.notification_id == key, interface="sse"
        ) as watch:
            # Read again now that the watch is in place: nothing falls in between.
            current = await resources.use_cases.get_notification(principal, notification_id)
            events, status = current.events or [], str(current.status)
            while True:
                for event in events:
                    if (event.sequence or 0) > last:
                        last = event.sequence or last
                        yield _message(notification_id, event)
                watch.note(key, last)
                if status in FINISHED:
                    return
                while (item := await watch.next(idle=heartbeat)) is None:
                    if watch.stopping:
                        return
                    yield ServerSentEventMessage(comment="heartbeat")
                if isinstance(item, StatusEvent) and item.sequence == last + 1:
                    events, status = [_domain(item)], item.status
                else:  # events were dropped or missed: read the truth
                    current = await resources.use_cases.get_notification(principal, notification_id)
                    events, status = current.events or [], str(current.status)

    return ServerSentEvent(stream(), headers={"Cache-Control": "no-store"})


def _domain(event: StatusEvent) -> Event:
    return Event(
        status=Status(event.status),
        at=event.at,
        attempt=event.attempt,
        detail=event.detail,
        sequence=event.sequence,
    )
