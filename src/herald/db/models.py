"""Herald's tables: API keys, notifications, their events, idempotency records, recipients,
templates and messages.

Postgres is the truth about every notification; Redis only carries the trigger to deliver
it (ARCHITECTURE.md section 3).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from herald.db.base import Base, sql_in
from herald.vocabulary import (
    CHANNELS,
    FINISHED,
    PRIORITIES,
    ROUTINGS,
    STATUSES,
    WAITING,
    Status,
)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(sql_in("status", STATUSES), name="status"),
        CheckConstraint(sql_in("channel", CHANNELS), name="channel"),
        CheckConstraint(sql_in("priority", PRIORITIES), name="priority"),
        Index(
            "ix_notifications_key_created", "api_key_id", text("created_at DESC"), text("id DESC")
        ),
        Index("ix_notifications_key_status", "api_key_id", "status", text("created_at DESC")),
        Index("ix_notifications_key_channel", "api_key_id", "channel", text("created_at DESC")),
        Index("ix_notifications_key_reference", "api_key_id", "reference"),
        Index(
            "ix_notifications_due",
            "next_attempt_at",
            postgresql_where=text(sql_in("status", WAITING)),
        ),
        Index(
            "ix_notifications_lease",
            "lease_expires_at",
            postgresql_where=text(f"status = '{Status.SENDING}'"),
        ),
        Index("ix_notifications_status_created", "channel", "status", text("created_at DESC")),
        # The dashboard's last-hour chart and its clean-up of old history (migration 0003).
        Index(
            "ix_notifications_finished",
            "updated_at",
            postgresql_where=text(sql_in("status", FINISHED)),
        ),
        Index(
            "ix_notifications_message",
            "message_id",
            postgresql_where=text("message_id IS NOT NULL"),
        ),
        # A recipient's history, masked when the recipient is deleted (migration 0006).
        Index(
            "ix_notifications_key_recipient",
            "api_key_id",
            "recipient_id",
            postgresql_where=text("recipient_id IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    api_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id"))
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    template: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    priority: Mapped[str] = mapped_column(String(8), default="normal")
    send_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reference: Mapped[str | None] = mapped_column(String(255))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)

    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The worker process (`WorkerProcess.id`) holding the lease of a `sending` row.
    leased_by: Mapped[uuid.UUID | None] = mapped_column(UUID)
    # The client's recipient id when a message to a recipient created it (migration 0006).
    recipient_id: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_message_id: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # How many events the notification has: the `sequence` of its latest (migration 0004).
    event_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The message that made it, if one did (migration 0008).
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL")
    )

    events: Mapped[list[NotificationEvent]] = relationship(
        lazy="raise", order_by="NotificationEvent.id", back_populates="notification"
    )


class NotificationEvent(Base):
    """One status transition of a notification, with its reason. Append-only."""

    __tablename__ = "notification_events"
    __table_args__ = (Index("ix_notification_events_notification", "notification_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    notification_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE")
    )
    status: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str | None] = mapped_column(Text)
    # 1, 2, 3... per notification, so a live subscriber can tell it missed one.
    sequence: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    notification: Mapped[Notification] = relationship(lazy="raise", back_populates="events")


class IdempotencyRecord(Base):
    """A client's `Idempotency-Key` for one operation, scoped to its API key, kept 24 hours:
    the fingerprint of the request and the ids of the notifications it created."""

    __tablename__ = "idempotency_keys"

    api_key_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    operation: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    result_ids: Mapped[list[uuid.UUID] | None] = mapped_column(ARRAY(UUID(as_uuid=True)))
    # Written by releases before 0004 (the REST response itself); unused, dropped later.
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class PausedQueue(Base):
    """A queue an operator paused: every replica stops picking from it until it is resumed."""

    __tablename__ = "paused_queues"

    queue: Mapped[str] = mapped_column(String(64), primary_key=True)
    paused_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    paused_by: Mapped[str | None] = mapped_column(String(100))


class WorkerProcess(Base):
    """A worker process's heartbeat in Postgres, beside the truth it protects: a `sending` row
    whose `leased_by` names a process not seen for `RECOVERY_SECONDS` is taken back at once,
    instead of waiting for its lease (migration 0005)."""

    __tablename__ = "worker_processes"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    instance: Mapped[str] = mapped_column(String(200))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Recipient(Base):
    """A client's recipient: addresses, locale, timezone, custom data and preferences, keyed by
    the client's own id within its API key (migration 0006)."""

    __tablename__ = "recipients"

    api_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    email: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    whatsapp: Mapped[str | None] = mapped_column(Text)
    locale: Mapped[str | None] = mapped_column(String(35))
    timezone: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    preferences: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RecipientPushToken(Base):
    """An FCM registration token of a recipient; one recipient per token within a key."""

    __tablename__ = "recipient_push_tokens"
    __table_args__ = (
        ForeignKeyConstraint(
            ["api_key_id", "recipient_id"],
            ["recipients.api_key_id", "recipients.id"],
            ondelete="CASCADE",
        ),
        Index("ix_recipient_push_tokens_recipient", "api_key_id", "recipient_id"),
    )

    api_key_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    token: Mapped[str] = mapped_column(Text, primary_key=True)
    recipient_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Message(Base):
    """One template sent to one recipient: the notifications it made (`notifications.message_id`),
    the channels it skipped and why, and, for fallback routing, the rendered content of the
    channels still to try (migration 0008)."""

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint(sql_in("routing", ROUTINGS), name="routing"),
        Index("ix_messages_key_created", "api_key_id", text("created_at DESC"), text("id DESC")),
        # Retention (migration 0009).
        Index("ix_messages_created", "created_at"),
        # The reconciler's fallback sweep (migration 0009).
        Index(
            "ix_messages_fallback_pending",
            "created_at",
            postgresql_where=text("routing = 'fallback' AND jsonb_array_length(pending) > 0"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    api_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    template_key: Mapped[str] = mapped_column(String(255))
    template_version: Mapped[int] = mapped_column(Integer)
    # The client's own recipient id; None for inline addresses.
    recipient_id: Mapped[str | None] = mapped_column(Text)
    locale: Mapped[str | None] = mapped_column(String(35))
    routing: Mapped[str] = mapped_column(String(16))
    # The channels used, in order (fallback: the order they are tried in).
    channels: Mapped[list[str]] = mapped_column(ARRAY(Text))
    # [{"channel", "reason"}] as decided at acceptance.
    skipped: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    # Fallback: [{"channel", "notifications": [rendered NotificationInput]}] not tried yet.
    pending: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    # The end of the recipient's quiet hours, when they deferred it.
    deferred_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    send_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    priority: Mapped[str] = mapped_column(String(8))
    reference: Mapped[str | None] = mapped_column(String(255))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Template(Base):
    """One version of a client's template: every save adds a row (migration 0007). A delete
    marks every version `deleted_at`, so a later save continues the numbering and a message
    that used version N still names content that existed."""

    __tablename__ = "templates"

    api_key_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    category: Mapped[str | None] = mapped_column(String(100))
    critical: Mapped[bool] = mapped_column(Boolean, default=False)
    default_locale: Mapped[str] = mapped_column(String(35))
    # locale -> channel -> content (the wire shape of `TemplateInput.locales`).
    locales: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
