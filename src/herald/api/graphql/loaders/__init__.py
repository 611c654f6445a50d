"""The DataLoaders of one operation (one per file), made together by `Loaders`."""

from __future__ import annotations

from herald.api.graphql.loaders.events import EventsLoader
from herald.auth.keys import Principal
from herald.notifications.use_cases import NotificationUseCases


class Loaders:
    def __init__(self, use_cases: NotificationUseCases, principal: Principal) -> None:
        self.events = EventsLoader(use_cases, principal)


__all__ = ["EventsLoader", "Loaders"]
