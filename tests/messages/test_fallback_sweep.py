"""A fallback is never lost: the reconciler's sweep falls back for the messages the delivery's
hook did not (its write failed, or the reconciler itself failed an abandoned last attempt).

Messages are accepted by an API-only app (no worker delivers the push), the push's end is
written as a worker that died or a hook that could not write would leave it, then the sweep
runs; a second app with workers sends what the sweep accepted.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from herald.messages import fallback
from herald.notifications import reconciler
from tests.channels.test_push import PROJECT
from tests.conftest import DATABASE_URL, make_settings, running_app
from tests.messages.routing_fixtures import ALERT, FALLBACK
from tests.messages.support import Providers, put, send, statuses, wait_message, welcome_jane


def _settings(providers: Providers, **overrides: Any) -> Any:
    return make_settings(
        push_provider="fcm",
        fcm_project_id=PROJECT,
        fcm_credentials_file=str(providers.key_file),
        fcm_base_url=providers.fcm.url_for("/"),
        **providers.twilio.settings(),
        **overrides,
    )


@pytest.fixture
async def api_only(providers: Providers) -> AsyncIterator[tuple[Litestar, httpx.AsyncClient]]:
    async with running_app(_settings(providers, enable_workers=False)) as found:
        yield found


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    found = create_async_engine(DATABASE_URL)
    yield found
    await found.dispose()


async def _accepted(client: httpx.AsyncClient, key: str) -> dict[str, Any]:
    await welcome_jane(client, key)
    await put(client, key, "/v1/templates/alert", ALERT)
    accepted = (await send(client, key, FALLBACK)).json()
    assert accepted["pending"] == ["sms"]
    return dict(accepted)


async def _end_push(engine: AsyncEngine, notification_id: str, status: str) -> None:
    """The push's last attempt as a worker left it: `failed` with its hook's write lost, or
    `sending` with an expired lease (the worker died)."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE notifications SET status = CAST(:status AS text), attempts = max_attempts,"
                " lease_expires_at = CASE WHEN CAST(:status AS text) = 'sending'"
                " THEN now() - interval '1 second' END WHERE id = :id"
            ),
            {"status": status, "id": uuid.UUID(notification_id)},
        )


async def _count(engine: AsyncEngine, message_id: str) -> int:
    async with engine.connect() as connection:
        found = await connection.scalar(
            text("SELECT count(*) FROM notifications WHERE message_id = :id"),
            {"id": uuid.UUID(message_id)},
        )
    return int(found or 0)


async def _sent_by_workers(providers: Providers, key: str, message_id: str) -> dict[str, Any]:
    async with running_app(_settings(providers)) as (_, client):
        return await wait_message(
            client, key, message_id, lambda m: statuses(m).get("sms") == "sent"
        )


async def test_a_lost_hook_write_is_made_good_by_the_sweep_and_the_sms_is_sent(
    api_only: tuple[Litestar, httpx.AsyncClient],
    api_key: str,
    providers: Providers,
    engine: AsyncEngine,
) -> None:
    app, client = api_only
    accepted = await _accepted(client, api_key)
    await _end_push(engine, accepted["notifications"][0]["id"], "failed")
    assert await _count(engine, accepted["id"]) == 1  # nothing fell back by itself

    recovered = await reconciler.reconcile_once(app.state.resources)
    assert recovered is not None
    assert recovered["fallback"] >= 1  # ours (the shared database may hold others)
    assert await _count(engine, accepted["id"]) == 2
    await reconciler.reconcile_once(app.state.resources)
    assert await _count(engine, accepted["id"]) == 2  # once is enough

    done = await _sent_by_workers(providers, api_key, accepted["id"])
    assert statuses(done) == {"push": "failed", "sms": "sent"}
    assert done.get("pending", []) == []
    (sms,) = providers.twilio.received
    assert (sms.to, sms.body) == ("+447700900123", "New sign-in, Jane")


async def test_a_notification_failed_by_the_reconciler_falls_back(
    api_only: tuple[Litestar, httpx.AsyncClient],
    api_key: str,
    providers: Providers,
    engine: AsyncEngine,
) -> None:
    app, client = api_only
    accepted = await _accepted(client, api_key)
    push_id = accepted["notifications"][0]["id"]
    await _end_push(engine, push_id, "sending")

    recovered = await reconciler.reconcile_once(app.state.resources)
    assert recovered is not None
    assert recovered["fallback"] >= 1  # ours (the shared database may hold others)
    done = await _sent_by_workers(providers, api_key, accepted["id"])
    assert statuses(done) == {"push": "failed", "sms": "sent"}
    push = next(n for n in done["notifications"] if n["channel"] == "push")
    assert "abandoned" in (push.get("error") or "")


async def test_the_hook_and_the_sweep_racing_fall_back_once(
    api_only: tuple[Litestar, httpx.AsyncClient],
    api_key: str,
    engine: AsyncEngine,
) -> None:
    app, client = api_only
    resources = app.state.resources
    accepted = await _accepted(client, api_key)
    push_id = uuid.UUID(accepted["notifications"][0]["id"])
    await _end_push(engine, str(push_id), "failed")

    async def swept() -> int:
        async with resources.worker_unit_of_work(transactional=True) as uow:
            return await fallback.sweep(uow, resources.settings.max_attempts, 10)

    async def hooked() -> int:
        await fallback.after_failed_for_good(resources, [push_id])
        return 0

    outcomes = await asyncio.gather(*[swept() for _ in range(4)], *[hooked() for _ in range(4)])
    assert sum(outcomes) <= 1
    assert await _count(engine, accepted["id"]) == 2
    message = await wait_message(client, api_key, accepted["id"], lambda m: True)
    assert [n["channel"] for n in message["notifications"]] == ["push", "sms"]
    assert message.get("pending", []) == []


async def test_a_message_that_cannot_fall_back_does_not_stop_the_others_or_the_pass(
    api_only: tuple[Litestar, httpx.AsyncClient],
    api_key: str,
    engine: AsyncEngine,
) -> None:
    app, client = api_only
    broken, good = [await _accepted(client, api_key) for _ in range(2)]
    for message in (broken, good):
        await _end_push(engine, message["notifications"][0]["id"], "failed")
    async with engine.begin() as connection:
        await connection.execute(
            text(
                'UPDATE messages SET pending = \'[{"channel": "sms", "notifications":'
                ' [{"not": "an input"}]}]\' WHERE id = :id'
            ),
            {"id": uuid.UUID(broken["id"])},
        )

    recovered = await reconciler.reconcile_once(app.state.resources)
    assert recovered is not None
    assert recovered["fallback"] >= 1  # ours (the shared database may hold others)
    assert await _count(engine, good["id"]) == 2
    assert await _count(engine, broken["id"]) == 1  # left for the next pass, still pending
