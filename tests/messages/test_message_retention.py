"""Retention deletes old messages once none of their notifications is left."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from herald.notifications import retention
from tests.conftest import DATABASE_URL, running_app
from tests.messages.support import Providers, auth
from tests.messages.test_fallback_sweep import _accepted, _settings


async def test_old_messages_go_with_their_last_notification_and_others_stay(
    api_key: str, providers: Providers
) -> None:
    engine = create_async_engine(DATABASE_URL)
    settings = _settings(providers, enable_workers=False, retention_days=30)
    try:
        async with running_app(settings) as (app, client):
            finished, waiting, recent = [await _accepted(client, api_key) for _ in range(3)]
            async with engine.begin() as connection:
                old = [uuid.UUID(m["id"]) for m in (finished, waiting)]
                await connection.execute(
                    text(
                        "UPDATE messages SET created_at = now() - interval '40 days'"
                        " WHERE id = ANY(:ids)"
                    ),
                    {"ids": old},
                )
                # the first's push (and the third's) finished long ago / today; the second's waits
                for message, age in ((finished, "40 days"), (recent, "0 days")):
                    await connection.execute(
                        text(
                            "UPDATE notifications SET status = 'sent',"
                            f" updated_at = now() - interval '{age}' WHERE message_id = :id"
                        ),
                        {"id": uuid.UUID(message["id"])},
                    )

            deleted = await retention.retain_once(app.state.resources)

            assert deleted is not None
            assert deleted["messages"] == 1  # only the first: the others are recent or waiting
            gone = await client.get(f"/v1/messages/{finished['id']}", headers=auth(api_key))
            assert gone.status_code == 404
            for kept in (waiting, recent):
                found = await client.get(f"/v1/messages/{kept['id']}", headers=auth(api_key))
                assert found.status_code == 200, found.text
                assert len(found.json()["notifications"]) == 1
    finally:
        await engine.dispose()
