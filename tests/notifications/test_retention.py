"""Retention deletes old finished history in small batches, one replica at a time."""

from __future__ import annotations

import asyncpg
from sqlalchemy.engine import make_url

from herald.notifications import retention
from herald.notifications.model import NotificationInput
from tests.conftest import DATABASE_URL, make_settings, running_app
from tests.notifications.conftest import auth

SMS = {"channel": "sms", "to": "+447911123456", "body": "old"}


async def _connect() -> asyncpg.Connection:
    url = make_url(DATABASE_URL)
    return await asyncpg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database,
    )


async def test_old_finished_history_goes_and_everything_else_stays(api_key: str) -> None:
    settings = make_settings(enable_workers=False, retention_days=30)
    async with running_app(settings) as (app, client):
        principal = await app.state.resources.authenticator.authenticate(f"Bearer {api_key}")
        use_cases = app.state.resources.use_cases
        batch = [NotificationInput(**{**SMS, "reference": f"r{i}"}) for i in range(2500)]
        old = (await use_cases.send_notifications(principal, batch[:1000])).notifications
        old += (await use_cases.send_notifications(principal, batch[1000:2000])).notifications
        old += (await use_cases.send_notifications(principal, batch[2000:2300])).notifications
        waiting = (await use_cases.send_notifications(principal, batch[2300:2400])).notifications
        recent = (await use_cases.send_notifications(principal, batch[2400:])).notifications
        db = await _connect()
        try:
            # 2300 finished 40 days ago, 100 still queued since then, 100 finished today
            await db.execute(
                "UPDATE notifications SET status = 'sent', updated_at = now() - interval '40 days'"
                " WHERE id = ANY($1::uuid[])",
                [n.id for n in old],
            )
            await db.execute(
                "UPDATE notifications SET updated_at = now() - interval '40 days'"
                " WHERE id = ANY($1::uuid[])",
                [n.id for n in waiting],
            )
            await db.execute(
                "UPDATE notifications SET status = 'failed' WHERE id = ANY($1::uuid[])",
                [n.id for n in recent],
            )
            await db.execute(
                "INSERT INTO idempotency_keys (api_key_id, operation, key, request_hash,"
                " created_at, expires_at) SELECT $1, 'send_notification', 'k' || g,"
                " '\\x00'::bytea, now() - interval '2 days', now() - interval '1 day'"
                " FROM generate_series(1, 1500) g",
                principal.id,
            )
            await db.execute(
                "INSERT INTO idempotency_keys (api_key_id, operation, key, request_hash,"
                " created_at, expires_at) VALUES ($1, 'send_notification', 'live', '\\x00',"
                " now(), now() + interval '1 day')",
                principal.id,
            )
            events_before = await db.fetchval("SELECT count(*) FROM notification_events")

            deleted = await retention.retain_once(app.state.resources)

            assert deleted == {"notifications": 2300, "messages": 0, "idempotency_keys": 1500}
            remaining = {r["id"] for r in await db.fetch("SELECT id FROM notifications")}
            assert remaining == {n.id for n in waiting + recent}
            events_after = await db.fetchval("SELECT count(*) FROM notification_events")
            assert events_before - events_after == 2300  # each one's `queued` event went too
            assert await db.fetchval("SELECT count(*) FROM idempotency_keys") == 1
            listed = await client.get("/v1/notifications?limit=200", headers=auth(api_key))
            assert len(listed.json()["items"]) == 200
            # one replica at a time: with the lock held elsewhere, a pass does nothing
            async with db.transaction():
                await db.execute("SELECT pg_advisory_xact_lock($1)", retention._LOCK_KEY)
                assert await retention.retain_once(app.state.resources) is None
        finally:
            await db.close()


async def test_zero_days_keeps_every_notification(api_key: str) -> None:
    settings = make_settings(enable_workers=False, retention_days=0)
    async with running_app(settings) as (app, _):
        principal = await app.state.resources.authenticator.authenticate(f"Bearer {api_key}")
        sent = await app.state.resources.use_cases.send_notification(
            principal, NotificationInput(**SMS)
        )
        db = await _connect()
        try:
            await db.execute(
                "UPDATE notifications SET status = 'sent', updated_at = now() - interval '9 years'"
            )
            assert await retention.retain_once(app.state.resources) == {
                "notifications": 0,
                "messages": 0,
                "idempotency_keys": 0,
            }
            assert await db.fetchval("SELECT count(*) FROM notifications") == 1
        finally:
            await db.close()
        assert sent.notifications
