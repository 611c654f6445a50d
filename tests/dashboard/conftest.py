"""Fixtures for the dashboard: a configured user, signing in, and rows written straight to the
database (the dashboard reads and acts on what is there, whoever wrote it)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from tests.conftest import DATABASE_URL, make_settings

from herald.config import Settings
from herald.dashboard.security import hash_password
from herald.db.models import ApiKey, Notification, NotificationEvent

USER = "admin"
PASSWORD = "correct horse battery staple"
PASSWORD_HASH = hash_password(PASSWORD)
SECRET = "dashboard-test-secret"
BASE = "/dashboard"


def dashboard_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "dashboard_username": USER,
        "dashboard_password_hash": PASSWORD_HASH,
        "dashboard_secret_key": SECRET,
        "dashboard_refresh_seconds": 0.5,
        "retry_base_seconds": 0.05,
    }
    values.update(overrides)
    return make_settings(**values)


def dashboard_env(**overrides: str) -> dict[str, str]:
    """The environment of a `herald serve` with the dashboard on."""
    return {
        "DASHBOARD_USERNAME": USER,
        "DASHBOARD_PASSWORD_HASH": PASSWORD_HASH,
        "DASHBOARD_SECRET_KEY": SECRET,
        "DASHBOARD_REFRESH_SECONDS": "0.5",
        **overrides,
    }


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match is not None, html[:2000]
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, password: str = PASSWORD) -> httpx.Response:
    """Sign in through the login form; returns the login POST's response."""
    page = await client.get(f"{BASE}/login")
    assert page.status_code == 200, page.text
    return await client.post(
        f"{BASE}/login",
        data={
            "username": USER,
            "password": password,
            "csrf_token": csrf_of(page.text),
            "next": f"{BASE}/",
        },
    )


async def session_csrf(client: httpx.AsyncClient) -> str:
    """The signed-in session's CSRF token, as every page's forms carry it."""
    page = await client.get(f"{BASE}/")
    assert page.status_code == 200, page.text
    return csrf_of(page.text)


@pytest.fixture
async def db() -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(DATABASE_URL)
    yield engine
    await engine.dispose()


class Rows:
    """Writes notifications (and their events) as the API and the workers would have."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.key_id: uuid.UUID | None = None
        self.clock = datetime.now(UTC) - timedelta(hours=2)

    async def _key(self) -> uuid.UUID:
        if self.key_id is None:
            self.key_id = uuid.uuid4()
            async with self.engine.begin() as conn:
                await conn.execute(
                    insert(ApiKey).values(
                        id=self.key_id, name="dashboard-tests", key_hash=b"\0" * 32, prefix="hk_x"
                    )
                )
        return self.key_id

    async def add(
        self,
        channel: str = "sms",
        status: str = "queued",
        *,
        events: list[tuple[str, str]] | None = None,
        **fields: Any,
    ) -> uuid.UUID:
        """One notification; `created_at` advances a second per row unless given."""
        self.clock += timedelta(seconds=1)
        created = fields.pop("created_at", self.clock)
        row: dict[str, Any] = {
            "id": uuid.uuid4(),
            "api_key_id": await self._key(),
            "channel": channel,
            "recipient": {"email": "jane@example.com", "push": "f" * 40 + ":APA91b" + "x" * 60}.get(
                channel, "+447911123456"
            ),
            "body": "Hello",
            "subject": "Hi" if channel == "email" else None,
            "priority": "normal",
            "status": status,
            "attempts": 1 if status in ("sent", "delivered", "failed", "retrying") else 0,
            "max_attempts": 5,
            # Scheduled for tomorrow; queued and retrying due since they were created.
            "next_attempt_at": created + timedelta(days=1)
            if status == "scheduled"
            else created
            if status in ("queued", "retrying")
            else None,
            "created_at": created,
            "updated_at": created,
            "sent_at": created if status in ("sent", "delivered") else None,
            **fields,
        }
        async with self.engine.begin() as conn:
            await conn.execute(insert(Notification).values(row))
            history = events if events is not None else [("queued", "accepted")]
            for i, (event_status, detail) in enumerate(history):
                await conn.execute(
                    insert(NotificationEvent).values(
                        notification_id=row["id"],
                        status=event_status,
                        attempt=min(i, row["attempts"]),
                        detail=detail,
                        created_at=created + timedelta(milliseconds=10 * i),
                    )
                )
        return uuid.UUID(str(row["id"]))

    async def failed(
        self, channel: str = "sms", error: str = "twilio 21211: bad", **fields: Any
    ) -> uuid.UUID:
        events = [
            ("queued", "accepted"),
            ("sending", "attempt 1 of 5 via twilio"),
            ("failed", error),
        ]
        return await self.add(channel, "failed", events=events, error=error, **fields)

    async def fetch(self, sql: str, **params: Any) -> list[Any]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(text(sql), params)).all())

    async def status_of(self, notification_id: uuid.UUID) -> str:
        rows = await self.fetch(
            "SELECT status FROM notifications WHERE id = :id", id=notification_id
        )
        return str(rows[0][0])


@pytest.fixture
async def rows(db: AsyncEngine) -> Rows:
    return Rows(db)


async def db_counts(rows: Rows, queue: str) -> dict[str, int]:
    """The overview's counts for `queue`, computed independently from the rows."""
    ((due, scheduled, in_progress, sent, failed, cancelled),) = await rows.fetch(
        """
        SELECT count(*) FILTER (WHERE status IN ('queued', 'retrying') AND next_attempt_at <= now()),
               count(*) FILTER (WHERE status = 'scheduled'
                                OR (status IN ('queued', 'retrying') AND next_attempt_at > now())),
               count(*) FILTER (WHERE status = 'sending'),
               count(*) FILTER (WHERE status IN ('sent', 'delivered')),
               count(*) FILTER (WHERE status = 'failed'),
               count(*) FILTER (WHERE status = 'cancelled')
          FROM notifications WHERE channel = :queue
        """,
        queue=queue,
    )
    return {
        "due": due,
        "scheduled": scheduled,
        "in_progress": in_progress,
        "sent": sent,
        "failed": failed,
        "cancelled": cancelled,
    }
