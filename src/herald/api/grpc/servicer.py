"""`herald.v1.NotificationService`: decode the request, call one use case, encode the result.

Errors are domain errors, turned into statuses in one place (`herald.api.grpc.status`). The
API key comes in `authorization: Bearer <key>` metadata, an idempotency key in
`idempotency-key` metadata (as REST's header: the same key over both is one request).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import structlog

from herald.api.grpc import convert
from herald.api.grpc import status as rpc
from herald.api.grpc.v1 import notifications_pb2 as pb
from herald.auth.keys import Principal
from herald.errors import FieldProblem, InvalidInput, Unavailable
from herald.notifications.events import StatusEvent, subscribe
from herald.resources import Resources

log = structlog.get_logger()

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["NotificationService"].full_name
MAX_WATCH_IDS = 100
# Events waiting for a slow watcher; past it the watch ends UNAVAILABLE (watch again).
WATCH_BUFFER = 1000
_SUBSCRIBE_TIMEOUT = 5.0
Context = grpc.aio.ServicerContext[Any, Any]


class NotificationService:
    def __init__(self, resources: Resources) -> None:
        self._resources = resources
        self._use_cases = resources.use_cases
        # One queue per open watch; None in it ends the watch (shutdown).
        self._watches: set[asyncio.Queue[StatusEvent | None]] = set()
        self._closing = False

    async def _principal(self, context: Context) -> Principal:
        return await self._resources.authenticator.authenticate(
            rpc.metadata(context, "authorization")
        )

    async def send_notification(
        self, request: pb.SendNotificationRequest, context: Context
    ) -> pb.Notification:
        principal = await self._principal(context)
        item = convert.notification_input(request.notification)
        submitted = await self._use_cases.send_notification(
            principal, item, idempotency_key=rpc.metadata(context, "idempotency-key")
        )
        if submitted.replayed:
            await context.send_initial_metadata((("idempotent-replayed", "true"),))
        return convert.notification(submitted.notifications[0])

    async def send_notifications(
        self, request: pb.SendNotificationsRequest, context: Context
    ) -> pb.SendNotificationsResponse:
        principal = await self._principal(context)
        items = [
            convert.notification_input(item, f"notifications[{index}].")
            for index, item in enumerate(request.notifications)
        ]
        submitted = await self._use_cases.send_notifications(
            principal, items, idempotency_key=rpc.metadata(context, "idempotency-key")
        )
        if submitted.replayed:
            await context.send_initial_metadata((("idempotent-replayed", "true"),))
        return pb.SendNotificationsResponse(
            notifications=[convert.notification(n) for n in submitted.notifications],
            replayed=submitted.replayed,
        )

    async def get_notification(
        self, request: pb.GetNotificationRequest, context: Context
    ) -> pb.Notification:
        principal = await self._principal(context)
        found = await self._use_cases.get_notification(
            principal, convert.notification_id(request.id)
        )
        return convert.notification(found)

    async def list_notifications(
        self, request: pb.ListNotificationsRequest, context: Context
    ) -> pb.ListNotificationsResponse:
        principal = await self._principal(context)
        page = await self._use_cases.list_notifications(principal, **convert.list_filters(request))
        return pb.ListNotificationsResponse(
            notifications=[convert.notification(n) for n in page.items],
            next_page_token=page.next_cursor or "",
        )

    async def cancel_notification(
        self, request: pb.CancelNotificationRequest, context: Context
    ) -> pb.Notification:
        principal = await self._principal(context)
        cancelled = await self._use_cases.cancel_notification(
            principal, convert.notification_id(request.id)
        )
        return convert.notification(cancelled)

    async def watch_notifications(
        self, request: pb.WatchNotificationsRequest, context: Context
    ) -> AsyncIterator[pb.NotificationEvent]:
        """The snapshot of the given ids, then their events (or every event of the caller's
        notifications when no id is given), until the client leaves or the server stops.

        The subscription is made before the snapshot is read, so nothing falls between them;
        an event already in the snapshot is skipped, and a gap in an id's sequence (the feed
        dropped one) is filled by reading the notification's history. The initial metadata
        (`herald-watch: subscribed`) is sent once the subscription is in place."""
        principal = await self._principal(context)
        ids = _watch_ids(request)
        if principal.owner is None:
            raise InvalidInput("only an API key can watch notifications")
        queue: asyncio.Queue[StatusEvent | None] = asyncio.Queue(maxsize=WATCH_BUFFER)
        subscribed = asyncio.Event()
        wanted = set(ids)

        async def pump() -> None:
            redis = self._resources.redis
            try:
                async for item in subscribe(redis, str(principal.owner), ready=subscribed):
                    if not wanted or uuid.UUID(item.notification_id) in wanted:
                        queue.put_nowait(item)
            finally:  # full (a slow watcher), or ended: the watch cannot go on
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)

        self._watches.add(queue)
        task = asyncio.create_task(pump(), name="herald-grpc-watch")
        try:
            try:
                async with asyncio.timeout(_SUBSCRIBE_TIMEOUT):
                    await subscribed.wait()
            except TimeoutError:
                raise Unavailable("cannot subscribe to status events; retry") from None
            # Initial metadata tells the client that nothing from now on will be missed.
            await context.send_initial_metadata((("herald-watch", "subscribed"),))
            last: dict[str, int] = {}
            for notification_id in ids:
                found = await self._use_cases.get_notification(principal, notification_id)
                snapshot = convert.snapshot(found)
                last[snapshot.notification_id] = snapshot.sequence
                yield snapshot
            while True:
                item = await queue.get()
                if item is None or (task.done() and not self._closing):
                    if self._closing:
                        return
                    raise Unavailable("the watch fell behind the events; watch again")
                seen = last.get(item.notification_id)
                if ids and seen is not None:
                    if item.sequence <= seen:
                        continue
                    if item.sequence > seen + 1:
                        async for missed in self._missed(principal, item, seen):
                            yield missed
                    last[item.notification_id] = item.sequence
                yield convert.status_event(item)
        finally:
            self._watches.discard(queue)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _missed(
        self, principal: Principal, item: StatusEvent, seen: int
    ) -> AsyncIterator[pb.NotificationEvent]:
        found = await self._use_cases.get_notification(principal, uuid.UUID(item.notification_id))
        for event in found.events or []:
            if event.sequence is not None and seen < event.sequence < item.sequence:
                yield convert.history_event(item.notification_id, event)

    def end_watches(self) -> None:
        """End every open watch (cleanly, status OK): the server is stopping."""
        self._closing = True
        for queue in list(self._watches):
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(None)

    def handler(self) -> grpc.GenericRpcHandler[Any, Any]:
        """The service's methods, with requests that fail to decode answered INVALID_ARGUMENT."""
        unary: dict[str, tuple[Any, Any, Any]] = {
            "SendNotification": (
                self.send_notification,
                pb.SendNotificationRequest,
                pb.Notification,
            ),
            "SendNotifications": (
                self.send_notifications,
                pb.SendNotificationsRequest,
                pb.SendNotificationsResponse,
            ),
            "GetNotification": (self.get_notification, pb.GetNotificationRequest, pb.Notification),
            "ListNotifications": (
                self.list_notifications,
                pb.ListNotificationsRequest,
                pb.ListNotificationsResponse,
            ),
            "CancelNotification": (
                self.cancel_notification,
                pb.CancelNotificationRequest,
                pb.Notification,
            ),
        }
        methods = rpc.unary_methods(unary)
        methods["WatchNotifications"] = grpc.unary_stream_rpc_method_handler(
            rpc.stream("WatchNotifications", self.watch_notifications),
            request_deserializer=rpc.decoder(pb.WatchNotificationsRequest),
            response_serializer=pb.NotificationEvent.SerializeToString,
        )
        return grpc.method_handlers_generic_handler(SERVICE_NAME, methods)


def _watch_ids(request: pb.WatchNotificationsRequest) -> list[uuid.UUID]:
    if len(request.ids) > MAX_WATCH_IDS:
        message = f"holds {len(request.ids)} ids; the limit is {MAX_WATCH_IDS}"
        raise InvalidInput(f"ids {message}", problems=[FieldProblem("ids", message)])
    ids = [convert.notification_id(value, f"ids[{i}]") for i, value in enumerate(request.ids)]
    return list(dict.fromkeys(ids))
