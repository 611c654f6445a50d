"""`Subscription.notificationEvents`: a snapshot, then each status event, live.

With `id`: the notification's events so far (NOT_FOUND unless it is yours), then each new
one, ending after a final status. With `filter` (or nothing): each new event of your
notifications that matches. Events carry the per-notification `sequence`; a gap means some
were missed (a Redis restart, a slow client): re-read the notification to resync.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator

import strawberry

from herald.api.graphql.context import Info
from herald.api.graphql.queries import parse_id
from herald.api.graphql.types.inputs import NotificationFilter
from herald.api.graphql.types.notification import NotificationEvent
from herald.api.live.watch import Dropped, Watch
from herald.errors import FieldProblem, InvalidInput
from herald.notifications.events import StatusEvent
from herald.notifications.model import Event
from herald.vocabulary import FINISHED, Status


def _event(event: StatusEvent) -> NotificationEvent:
    return NotificationEvent.from_domain(
        event.notification_id,
        Event(
            status=Status(event.status),
            at=event.at,
            attempt=event.attempt,
            detail=event.detail,
            sequence=event.sequence,
        ),
    )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="One notification's events (a snapshot, then live), or every new event of "
        "your notifications that matches `filter`."
    )
    async def notification_events(
        self, info: Info, id: strawberry.ID | None = None, filter: NotificationFilter | None = None
    ) -> AsyncGenerator[NotificationEvent, None]:
        context = info.context
        principal = await context.principal()
        if id is not None and filter is not None:
            raise InvalidInput(
                "give id or filter, not both",
                problems=[FieldProblem("filter", "cannot be given with id")],
            )
        owner = str(principal.owner)
        if id is not None:
            wanted = parse_id(id)
            key = str(wanted)
            async with Watch(
                context.resources, owner, lambda e: e.notification_id == key, interface="graphql"
            ) as watch:
                snapshot = await context.use_cases.get_notification(principal, wanted)
                for event in snapshot.events or []:
                    watch.note(str(wanted), event.sequence)
                    yield NotificationEvent.from_domain(wanted, event)
                if snapshot.status in FINISHED:
                    return
                async for item in watch.events():
                    if isinstance(item, Dropped):
                        continue  # the client sees the gap in `sequence`
                    yield _event(item)
                    if item.status in FINISHED:
                        return
            return
        matches = _Matcher(info, filter or NotificationFilter())
        async with Watch(context.resources, owner, interface="graphql") as watch:
            async for item in watch.events():
                if not isinstance(item, Dropped) and await matches(item):
                    yield _event(item)


class _Matcher:
    """Whether an event's notification matches the filter (channel and reference are read
    once per notification, status is the event's own)."""

    def __init__(self, info: Info, wanted: NotificationFilter) -> None:
        self._info = info
        self._wanted = wanted
        self._known: dict[str, tuple[str, str | None]] = {}

    async def __call__(self, event: StatusEvent) -> bool:
        wanted = self._wanted
        if wanted.status is not None and event.status != wanted.status.value:
            return False
        if wanted.channel is None and wanted.reference is None:
            return True
        known = self._known.get(event.notification_id)
        if known is None:
            context = self._info.context
            found = await context.use_cases.get_notification(
                await context.principal(), uuid.UUID(event.notification_id)
            )
            if len(self._known) > 10_000:
                self._known.clear()
            known = self._known[event.notification_id] = (found.channel, found.reference)
        if wanted.channel is not None and known[0] != wanted.channel.value:
            return False
        return wanted.reference is None or known[1] == wanted.reference
