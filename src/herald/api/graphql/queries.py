"""`Query`: read one notification, or a page of them."""

from __future__ import annotations

import uuid

import strawberry

from herald.api.graphql.context import Info
from herald.api.graphql.errors import with_fields
from herald.api.graphql.recipient_queries import RecipientQueryMixin
from herald.api.graphql.template_queries import TemplateQueryMixin
from herald.api.graphql.types.inputs import NotificationFilter
from herald.api.graphql.types.notification import Notification, NotificationConnection
from herald.errors import FieldProblem, HeraldError, InvalidInput


def parse_id(value: strawberry.ID, field: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput(
            f"{field} is not a notification id",
            problems=[FieldProblem(field, "is not a notification id (a UUID)")],
        ) from None


_LIST_ARGUMENTS = {"limit": "first", "cursor": "after"}


@strawberry.type
class Query(RecipientQueryMixin, TemplateQueryMixin):
    @strawberry.field(description="One of your notifications, with every event.")
    async def notification(self, info: Info, id: strawberry.ID) -> Notification:
        found = await info.context.use_cases.get_notification(
            await info.context.principal(), parse_id(id)
        )
        return Notification.from_domain(found)

    @strawberry.field(description="Your notifications, newest first, a page at a time.")
    async def notifications(
        self,
        info: Info,
        filter: NotificationFilter | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> NotificationConnection:
        wanted = filter or NotificationFilter()
        try:
            page = await info.context.use_cases.list_notifications(
                await info.context.principal(),
                status=wanted.status.value if wanted.status else None,
                channel=wanted.channel.value if wanted.channel else None,
                reference=wanted.reference,
                limit=first,
                cursor=after,
            )
        except HeraldError as exc:
            raise with_fields(
                exc, lambda p: _LIST_ARGUMENTS.get(p.field, f"filter.{p.field}")
            ) from exc
        return NotificationConnection.from_domain(page)
