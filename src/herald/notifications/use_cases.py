"""The operations every interface calls: REST, GraphQL, gRPC, the live stream, the dashboard.

Each takes a `Principal` and plain typed inputs, checks them (the same rules whatever the
interface), does its work in one unit of work (commit, then enqueue, then publish) and
returns domain objects. Errors are domain errors (`herald.errors`); no request, status code
or response bytes appear here. An API key sees and acts on its own notifications only (a
notification of another key is "not found"); an operator (the dashboard) on all of them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from herald.auth.keys import Principal
from herald.config import Settings
from herald.errors import Conflict, Forbidden, InvalidInput, NotFound, ValidationFailed, summary
from herald.notifications import idempotency, store, transitions
from herald.notifications.events import EventFeed, StatusEvent
from herald.notifications.model import Event, Notification, NotificationInput, NotificationPage
from herald.notifications.submissions import SubmissionGroups
from herald.notifications.unit_of_work import UnitOfWork
from herald.notifications.validation import check_filters, validate_batch, validate_one
from herald.queue import JobQueue
from herald.queue.control import pause_queue, resume_queue
from herald.vocabulary import CHANNELS

SEND_NOTIFICATION = "send_notification"
SEND_NOTIFICATIONS = "send_notifications"
# One retry-all retries at most this many failed notifications of a queue.
RETRY_ALL_LIMIT = 1000
# One history clean-up deletes at most this many notifications, in batches of DELETE_BATCH.
DELETE_LIMIT = 100_000
DELETE_BATCH = 5000
MAX_HISTORY_DAYS = 3650
# Submitting and listing belong to an API key.
ONLY_API_KEYS = "only an API key can submit or list notifications"


@dataclass(frozen=True, slots=True)
class Submitted:
    """The notifications a submission created, or, for a repeated idempotency key, the ones
    the first request created (`replayed`, in their current state)."""

    notifications: list[Notification]
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class HistoryDeleted:
    deleted: int
    more_left: bool


_canonical = msgspec.json.Encoder(order="sorted").encode


class NotificationUseCases:
    """The use cases, bound to the process's resources (created once, in the lifespan)."""

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        session_maker: async_sessionmaker[AsyncSession],
        jobs: JobQueue,
        feed: EventFeed,
    ) -> None:
        self.settings = settings
        self._engine = engine
        self._session_maker = session_maker
        # Reads and idempotency claims are single statements: no BEGIN/COMMIT round trips.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.jobs = jobs
        self.feed = feed
        # Single submissions are committed in groups (`herald.notifications.submissions`).
        self.groups = SubmissionGroups(
            lambda transactional: self.unit_of_work(None if transactional else self._autocommit),
            max_attempts=settings.max_attempts,
            limit=settings.submission_group_limit,
            wait_seconds=settings.submission_group_wait_ms / 1000,
        )

    async def stop(self) -> None:
        """Write the single submissions still waiting for a group (at shutdown)."""
        await self.groups.stop()

    def unit_of_work(self, engine: AsyncEngine | None = None) -> UnitOfWork:
        return UnitOfWork(engine or self._engine, self.jobs, self.feed)

    # -- submitting --------------------------------------------------------------------------

    async def send_notification(
        self, principal: Principal, item: NotificationInput, *, idempotency_key: str | None = None
    ) -> Submitted:
        """Store one notification and queue its delivery (`queued`, or `scheduled`), committed
        with the single submissions that arrive at the same time (a group commit)."""
        problems = validate_one(item)
        if problems:
            raise ValidationFailed(summary(problems), problems=problems)
        return await self._submit(principal, [item], SEND_NOTIFICATION, idempotency_key)

    async def send_notifications(
        self,
        principal: Principal,
        items: list[NotificationInput],
        *,
        idempotency_key: str | None = None,
    ) -> Submitted:
        """All or nothing: one bad item fails them all, naming every bad item."""
        problems = validate_batch(items)
        if problems:
            raise ValidationFailed(summary(problems), problems=problems)
        return await self._submit(principal, items, SEND_NOTIFICATIONS, idempotency_key)

    async def _submit(
        self,
        principal: Principal,
        items: list[NotificationInput],
        operation: str,
        idempotency_key: str | None,
    ) -> Submitted:
        owner = principal.api_key(ONLY_API_KEYS)
        key: idempotency.Key | None = None
        if idempotency_key is not None:
            key = idempotency.Key(owner, operation, idempotency.check_key(idempotency_key))
            request_hash = idempotency.fingerprint(operation, _canonical(items))
            ids = await idempotency.claim(
                self._engine, key, request_hash, self.settings.idempotency_ttl_seconds
            )
            if ids is not None:
                async with self._autocommit.connect() as connection:
                    return Submitted(await store.read_many(connection, owner, ids), replayed=True)
        try:
            if operation == SEND_NOTIFICATION:
                row, event = await self.groups.submit(owner, items[0], key)
                rows, events = [row], [event]
            else:
                async with self.unit_of_work() as uow:
                    rows, events = await transitions.accept(
                        uow.connection, owner, items, self.settings.max_attempts
                    )
                    if key is not None:
                        await idempotency.record_result(uow.connection, key, [r.id for r in rows])
                    uow.deliver(rows)
                    uow.publish(events)
        except BaseException:
            if key is not None:
                await idempotency.release(self._engine, key)
            raise
        return Submitted(
            [
                store.to_domain(row, events=[_first_event(event)])
                for row, event in zip(rows, events, strict=True)
            ]
        )

    # -- reading -----------------------------------------------------------------------------

    async def get_notification(
        self, principal: Principal, notification_id: uuid.UUID
    ) -> Notification:
        """One notification with every event; NotFound if it is not the principal's."""
        async with self._autocommit.connect() as connection:
            found = await store.read_many(connection, principal.owner, [notification_id])
        if not found:
            raise NotFound(f"no notification {notification_id}")
        return found[0]

    async def events_of(
        self, principal: Principal, notification_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, list[Event]]:
        """The events of many notifications at once (the principal's; others' are empty)."""
        async with self._autocommit.connect() as connection:
            return await store.read_events_many(connection, principal.owner, notification_ids)

    async def list_notifications(
        self,
        principal: Principal,
        *,
        status: str | None = None,
        channel: str | None = None,
        reference: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> NotificationPage:
        """Newest first, with a cursor that stays stable while new ones arrive."""
        problems = check_filters(status, channel, reference, limit)
        if problems:
            raise InvalidInput(summary(problems), problems=problems)
        async with self._autocommit.connect() as connection:
            return await store.list_page(
                connection,
                principal.api_key(ONLY_API_KEYS),
                status=status,
                channel=channel,
                reference=reference,
                limit=limit,
                cursor=cursor,
            )

    # -- changing a notification -------------------------------------------------------------

    async def cancel_notification(
        self, principal: Principal, notification_id: uuid.UUID
    ) -> Notification:
        """Cancel it if no provider has it yet; Conflict once one has."""
        async with self.unit_of_work() as uow:
            moved = await transitions.cancel(
                uow.connection, notification_id, principal.owner, f"cancelled {_by(principal)}"
            )
            if moved is None:
                raise await self._why_not(uow, principal, notification_id, "cancelled")
            uow.publish([moved.event])
        return await self.get_notification(principal, notification_id)

    async def retry_notification(
        self, principal: Principal, notification_id: uuid.UUID
    ) -> Notification:
        """Queue a failed notification again, due now, with a fresh budget of attempts."""
        async with self.unit_of_work() as uow:
            moved = None
            if await self._owns(uow, principal, notification_id):
                moved = await transitions.retry(
                    uow.connection,
                    notification_id,
                    self.settings.max_attempts,
                    f"retried {_by(principal)}",
                )
            if moved is None:
                raise await self._why_not(
                    uow, principal, notification_id, "retried (only failed ones can)"
                )
            uow.deliver([moved])
            uow.publish([moved.event])
        return await self.get_notification(principal, notification_id)

    # -- operating the queues (operators only) -----------------------------------------------

    async def retry_failed_in_queue(self, principal: Principal, queue: str) -> int:
        """Queue again up to RETRY_ALL_LIMIT failed notifications of `queue`, the most recent
        failures first; how many."""
        self._operator(principal)
        _check_queue(queue)
        detail = f"retried {_by(principal)} (retry all failed in {queue})"
        async with self.unit_of_work() as uow:
            moved = await transitions.retry_failed_in_queue(
                uow.connection, queue, RETRY_ALL_LIMIT, self.settings.max_attempts, detail
            )
            uow.deliver(moved)
            uow.publish([m.event for m in moved])
        return len(moved)

    async def pause_queue(self, principal: Principal, queue: str) -> None:
        """Every replica stops picking from the queue within a second (kept across restarts)."""
        self._operator(principal)
        _check_queue(queue)
        async with self._session_maker() as session, session.begin():
            await pause_queue(session, queue, by=principal.name)

    async def resume_queue(self, principal: Principal, queue: str) -> None:
        self._operator(principal)
        _check_queue(queue)
        async with self._session_maker() as session, session.begin():
            await resume_queue(session, queue)

    async def delete_history(self, principal: Principal, days: int) -> HistoryDeleted:
        """Delete notifications finished (sent, delivered, failed, cancelled) more than `days`
        ago, with their events: in batches, each its own transaction, at most DELETE_LIMIT."""
        self._operator(principal)
        if not 1 <= days <= MAX_HISTORY_DAYS:
            raise InvalidInput(f"days must be between 1 and {MAX_HISTORY_DAYS}")
        cutoff = datetime.now(UTC) - timedelta(days=days)
        deleted = 0
        while deleted < DELETE_LIMIT:
            async with self._engine.begin() as connection:
                batch = await store.delete_finished_before(
                    connection, cutoff, min(DELETE_BATCH, DELETE_LIMIT - deleted)
                )
            deleted += batch
            if batch < DELETE_BATCH:
                return HistoryDeleted(deleted, more_left=False)
        return HistoryDeleted(deleted, more_left=True)

    # -- rules -------------------------------------------------------------------------------

    @staticmethod
    def _operator(principal: Principal) -> None:
        if not principal.operator:
            raise Forbidden("only an operator (the dashboard) can do this")

    @staticmethod
    async def _owns(uow: UnitOfWork, principal: Principal, notification_id: uuid.UUID) -> bool:
        if principal.owner is None:
            return True
        found = await store.owner_and_status(uow.connection, notification_id)
        return found is not None and found[0] == principal.owner

    @staticmethod
    async def _why_not(
        uow: UnitOfWork, principal: Principal, notification_id: uuid.UUID, action: str
    ) -> NotFound | Conflict:
        found = await store.owner_and_status(uow.connection, notification_id)
        if found is None or (principal.owner is not None and found[0] != principal.owner):
            return NotFound(f"no notification {notification_id}")
        if action == "cancelled":
            return Conflict(
                f"notification {notification_id} is {found[1]}; it can no longer be cancelled"
            )
        return Conflict(f"notification {notification_id} is {found[1]}; it cannot be {action}")


def _by(principal: Principal) -> str:
    return f"from the dashboard by {principal.name}" if principal.operator else "by the client"


def _check_queue(queue: str) -> None:
    if queue not in CHANNELS:
        raise NotFound(f"no queue {queue!r}; the queues are {', '.join(CHANNELS)}")


def _first_event(event: StatusEvent) -> Event:
    """A just-accepted notification's history, without reading it back."""
    return Event(
        status=event.status,  # type: ignore[arg-type]
        at=event.at,
        attempt=event.attempt,
        detail=event.detail,
        sequence=event.sequence,
    )
