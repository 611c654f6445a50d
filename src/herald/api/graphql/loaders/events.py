"""The events of many notifications in one read: a page of N notifications costs one query."""

from __future__ import annotations

import uuid

from strawberry.dataloader import DataLoader

from herald.auth.keys import Principal
from herald.notifications.model import Event
from herald.notifications.use_cases import NotificationUseCases


class EventsLoader(DataLoader[uuid.UUID, list[Event]]):
    def __init__(self, use_cases: NotificationUseCases, principal: Principal) -> None:
        async def load(ids: list[uuid.UUID]) -> list[list[Event]]:
            found = await use_cases.events_of(principal, ids)
            return [found[i] for i in ids]

        # Batching without a cache: on WebSocket the context (and so this loader) lives as long
        # as the connection, and events change; one batch per tick is what saves the queries.
        super().__init__(load_fn=load, cache=False)
