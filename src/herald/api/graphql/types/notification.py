"""`Notification`, `NotificationEvent` and the cursor connection over notifications."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from herald.api.graphql.context import Info
from herald.api.graphql.types.enums import Channel, Priority, Status
from herald.api.graphql.types.scalars import JSON
from herald.notifications import model
from herald.notifications.store import encode_cursor


@strawberry.type(description="One status transition of a notification, with its reason.")
class NotificationEvent:
    notification_id: strawberry.ID
    status: Status
    attempt: int
    detail: str | None
    sequence: int = strawberry.field(
        description="1, 2, 3... per notification: a gap means a missed event (re-read it)."
    )
    created_at: datetime

    @classmethod
    def from_domain(cls, notification_id: uuid.UUID | str, event: model.Event) -> NotificationEvent:
        return cls(
            notification_id=strawberry.ID(str(notification_id)),
            status=Status(event.status),
            attempt=event.attempt,
            detail=event.detail,
            sequence=event.sequence or 0,
            created_at=event.at,
        )


@strawberry.type(description="A WhatsApp template and its body parameters.")
class WhatsAppTemplate:
    name: str
    language: str
    parameters: list[str]


@strawberry.type(description="One message to one address on one channel, and its history.")
class Notification:
    id: strawberry.ID
    channel: Channel
    to: str
    status: Status
    priority: Priority
    attempts: int
    max_attempts: int
    created_at: datetime
    updated_at: datetime
    subject: str | None
    body: str | None
    html: str | None
    data: JSON | None
    template: WhatsAppTemplate | None
    send_at: datetime | None
    reference: str | None
    metadata: JSON | None
    next_attempt_at: datetime | None
    provider: str | None
    provider_message_id: str | None
    error: str | None
    sent_at: datetime | None
    domain: strawberry.Private[model.Notification]

    @strawberry.field(description="Every status change, oldest first.")
    async def events(self, info: Info) -> list[NotificationEvent]:
        events = self.domain.events
        if events is None:  # a page's row: its events come batched, one query per page
            events = await (await info.context.loaders()).events.load(self.domain.id)
        return [NotificationEvent.from_domain(self.domain.id, event) for event in events]

    @classmethod
    def from_domain(cls, n: model.Notification) -> Notification:
        template = None
        if n.template is not None:
            template = WhatsAppTemplate(
                name=str(n.template.get("name", "")),
                language=str(n.template.get("language", "")),
                parameters=[str(p) for p in n.template.get("parameters", [])],
            )
        return cls(
            id=strawberry.ID(str(n.id)),
            channel=Channel(n.channel),
            to=n.to,
            status=Status(n.status),
            priority=Priority(n.priority),
            attempts=n.attempts,
            max_attempts=n.max_attempts,
            created_at=n.created_at,
            updated_at=n.updated_at,
            subject=n.subject,
            body=n.body,
            html=n.html,
            data=JSON(n.data) if n.data is not None else None,
            template=template,
            send_at=n.send_at,
            reference=n.reference,
            metadata=JSON(n.metadata) if n.metadata is not None else None,
            next_attempt_at=n.next_attempt_at,
            provider=n.provider,
            provider_message_id=n.provider_message_id,
            error=n.error,
            sent_at=n.sent_at,
            domain=n,
        )


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class NotificationEdge:
    cursor: str
    node: Notification


@strawberry.type(description="A page of notifications, newest first.")
class NotificationConnection:
    edges: list[NotificationEdge]
    page_info: PageInfo

    @strawberry.field(description="The page's notifications, without their cursors.")
    def nodes(self) -> list[Notification]:
        return [edge.node for edge in self.edges]

    @classmethod
    def from_domain(cls, page: model.NotificationPage) -> NotificationConnection:
        return cls(
            edges=[
                NotificationEdge(
                    cursor=encode_cursor(n.created_at, n.id), node=Notification.from_domain(n)
                )
                for n in page.items
            ],
            page_info=PageInfo(
                has_next_page=page.next_cursor is not None, end_cursor=page.next_cursor
            ),
        )
