"""Deliveries' claims and outcomes in batches: one claim per attempt, events, outages."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from sqlalchemy.engine import make_url

from herald.notifications import transitions
from herald.notifications.batches import ClaimRequest, Finished
from herald.notifications.delivery import _with_db_retry
from tests.conftest import DATABASE_URL, make_settings, running_app
from tests.notifications.conftest import auth
from tests.support.tcp_proxy import TcpProxy

SMS = {"channel": "sms", "to": "+447911123456", "body": "Your code is 123456"}


async def _queued(client: Any, key: str, n: int) -> list[str]:
    body = {"notifications": [{**SMS, "reference": f"b-{i}"} for i in range(n)]}
    response = await client.post("/v1/notifications/batch", json=body, headers=auth(key))
    assert response.status_code in (200, 201, 202), response.text
    return [item["id"] for item in response.json()["notifications"]]


def _sent(notification_id: str, attempt: int) -> Finished:
    return Finished(
        transitions.Outcome(
            uuid.UUID(notification_id), attempt, "sent", "test accepted it", provider_message_id="x"
        ),
        again=False,
    )


async def test_a_batch_claim_racing_duplicate_and_stale_jobs_claims_each_attempt_once(
    api_key: str,
) -> None:
    # No workers: this test is the only one claiming.
    async with running_app(make_settings(enable_workers=False)) as (app, client):
        first, second = await _queued(client, api_key, 2)
        claims = app.state.resources.delivery_batches.claims("sms", 30.0, "test")
        # Submitted in one turn of the loop, so all of them go in one statement: the same
        # attempt's job twice, a stale attempt's job, a job from the future, another row.
        results = await asyncio.gather(
            claims.submit(ClaimRequest(first, 1)),
            claims.submit(ClaimRequest(first, 1)),
            claims.submit(ClaimRequest(first, 0)),
            claims.submit(ClaimRequest(first, 2)),
            claims.submit(ClaimRequest(second, 1)),
            claims.submit(ClaimRequest("not-a-uuid", 1)),
        )
        won = [r for r in results[:4] if r is not None]
        assert len(won) == 1
        assert won[0].attempt == 1
        assert str(won[0].id) == first
        assert results[4] is not None
        assert str(results[4].id) == second
        assert results[5] is None
        # A job arriving after the claim (a duplicate run later) finds nothing either.
        assert await claims.submit(ClaimRequest(first, 1)) is None

        finish = app.state.resources.delivery_batches.finish
        done = await asyncio.gather(
            finish.submit(_sent(first, 1)),
            finish.submit(_sent(first, 1)),  # the same outcome twice is recorded once
            finish.submit(_sent(second, 1)),
            finish.submit(_sent(second, 2)),  # an attempt that holds no claim
        )
        assert done[0] is not None
        assert done[0].status == "sent"
        assert done[1] is None
        assert done[3] is None
        assert done[2] is not None
        for notification_id in (first, second):
            response = await client.get(
                f"/v1/notifications/{notification_id}", headers=auth(api_key)
            )
            body = response.json()
            assert body["status"] == "sent"
            assert [e["status"] for e in body["events"]] == ["queued", "sending", "sent"]
            assert body["events"][1]["detail"] == "attempt 1 of 5 via test"


async def test_an_outage_during_a_batched_outcome_flush_loses_nothing(api_key: str) -> None:
    url = make_url(DATABASE_URL)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    try:
        via_proxy = url.set(port=proxy.port).render_as_string(hide_password=False)
        settings = make_settings(
            enable_workers=False, database_url=via_proxy, database_timeout_seconds=2
        )
        async with running_app(settings) as (app, client):
            ids = await _queued(client, api_key, 3)
            batches = app.state.resources.delivery_batches
            claims = batches.claims("sms", 30.0, "test")
            claimed = await asyncio.gather(*(claims.submit(ClaimRequest(i, 1)) for i in ids))
            assert all(c is not None for c in claimed)

            tries = dict.fromkeys(ids, 0)

            def write(notification_id: str) -> Any:
                async def once() -> transitions.Moved | None:
                    tries[notification_id] += 1
                    return await batches.finish.submit(_sent(notification_id, 1))

                return once

            proxy.pause()
            deadline = time.monotonic() + 60
            recording = [asyncio.create_task(_with_db_retry(write(i), deadline)) for i in ids]
            # Every outcome met the outage at least once (its batch failed) before Postgres
            # comes back.
            while min(tries.values()) < 2:
                assert time.monotonic() < deadline, tries
                await asyncio.sleep(0.05)
            proxy.resume()
            moved = await asyncio.gather(*recording)
            assert all(m is not None and m.status == "sent" for m in moved)
            for notification_id in ids:
                response = await client.get(
                    f"/v1/notifications/{notification_id}", headers=auth(api_key)
                )
                events = [e["status"] for e in response.json()["events"]]
                assert events == ["queued", "sending", "sent"]
    finally:
        proxy.stop()
