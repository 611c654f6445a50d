"""Deliveries' claims and outcomes in batches: one claim per attempt, events, outages."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

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
        claims = app.state.resources.delivery_batches.claim
        # Submitted in one turn of the loop, so all of them go in one statement: the same
        # attempt's job twice, a stale attempt's job, a job from the future, another row.
        results = await asyncio.gather(
            claims.submit(ClaimRequest(first, 1, 30.0, "test")),
            claims.submit(ClaimRequest(first, 1, 30.0, "test")),
            claims.submit(ClaimRequest(first, 0, 30.0, "test")),
            claims.submit(ClaimRequest(first, 2, 30.0, "test")),
            claims.submit(ClaimRequest(second, 1, 30.0, "test")),
            claims.submit(ClaimRequest("not-a-uuid", 1, 30.0, "test")),
        )
        won = [r for r in results[:4] if r is not None]
        assert len(won) == 1
        assert won[0].attempt == 1
        assert str(won[0].id) == first
        assert results[4] is not None
        assert str(results[4].id) == second
        assert results[5] is None
        # A job arriving after the claim (a duplicate run later) finds nothing either.
        assert await claims.submit(ClaimRequest(first, 1, 30.0, "test")) is None

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


async def test_one_claim_statement_gives_each_row_its_own_channels_lease_and_provider(
    api_key: str,
) -> None:
    # The queues share one claims batcher, so one statement holds several channels' jobs, each
    # with its channel's lease and provider (two rows claimed as an SMS and an email job would).
    async with running_app(make_settings(enable_workers=False)) as (app, client):
        one, other = await _queued(client, api_key, 2)
        claims = app.state.resources.delivery_batches.claim
        won = await asyncio.gather(
            claims.submit(ClaimRequest(one, 1, 30.0, "twilio")),
            claims.submit(ClaimRequest(other, 1, 300.0, "smtp")),
        )
        assert all(w is not None for w in won)
        engine = app.state.resources.engine
        async with engine.connect() as conn:
            rows = {
                str(row.id): row
                for row in await conn.execute(
                    text(
                        "SELECT n.id, n.provider, extract(epoch FROM n.lease_expires_at - now())"
                        " AS left_s, e.detail FROM notifications n JOIN notification_events e"
                        " ON e.notification_id = n.id AND e.status = 'sending'"
                        " WHERE n.id IN (:a, :b)"
                    ),
                    {"a": one, "b": other},
                )
            }
        assert rows[one].provider == "twilio"
        assert rows[other].provider == "smtp"
        assert 20 < rows[one].left_s <= 30
        assert 290 < rows[other].left_s <= 300
        assert rows[one].detail.endswith("via twilio")
        assert rows[other].detail.endswith("via smtp")


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
            claimed = await asyncio.gather(
                *(batches.claim.submit(ClaimRequest(i, 1, 30.0, "test")) for i in ids)
            )
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


def _index_names(plan: Any) -> set[str]:
    """Every index an EXPLAIN (FORMAT JSON) plan reads."""
    found: set[str] = set()
    if isinstance(plan, dict):
        if "Index Name" in plan:
            found.add(plan["Index Name"])
        for value in plan.values():
            found |= _index_names(value)
    elif isinstance(plan, list):
        for value in plan:
            found |= _index_names(value)
    return found


async def test_batch_claims_and_outcomes_find_their_rows_by_key_when_statistics_lag_a_backlog(
    api_key: str,
) -> None:
    # The statistics say almost nothing waits (ANALYZE first); then a backlog arrives that no
    # ANALYZE has seen yet, as after a burst. Written plainly, the claim's status and due
    # tests let the planner scan `ix_notifications_due` (the whole backlog, for every batch)
    # and the outcome's `ix_notifications_lease` (every dead `sending` entry): measured at
    # 15-30 ms a statement under load. Each must look its rows up by primary key instead.
    engine = create_async_engine(DATABASE_URL)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("ANALYZE notifications"))
            owner = (await conn.execute(text("SELECT id FROM api_keys LIMIT 1"))).scalar_one()
            await conn.execute(
                text(
                    "INSERT INTO notifications (id, api_key_id, channel, recipient, body,"
                    " priority, status, attempts, max_attempts, next_attempt_at, event_seq,"
                    " created_at, updated_at)"
                    " SELECT gen_random_uuid(), :owner, 'sms', '+447911123456', 'b', 'normal',"
                    " s, CASE WHEN s = 'sending' THEN 1 ELSE 0 END, 5, now(), 1, now(), now()"
                    " FROM generate_series(1, 20000) AS i,"
                    " LATERAL (SELECT CASE WHEN i % 4 = 0 THEN 'sending' ELSE 'queued' END) AS t(s)"
                ),
                {"owner": owner},
            )
            picked = (
                await conn.execute(
                    text("SELECT id, status FROM notifications WHERE api_key_id = :owner"),
                    {"owner": owner},
                )
            ).all()
            waiting = [row.id for row in picked if row.status == "queued"][:10]
            sending = [row.id for row in picked if row.status == "sending"][:10]
            claim = {
                "ids": waiting,
                "attempts": [1] * len(waiting),
                "leases": [30.0] * len(waiting),
                "providers": ["test"] * len(waiting),
                "leased_by": None,
            }
            finish = {
                "ids": sending,
                "attempts": [1] * len(sending),
                "statuses": ["sent"] * len(sending),
                "details": ["ok"] * len(sending),
                "next_attempt_ats": [None] * len(sending),
                "errors": [None] * len(sending),
                "provider_message_ids": ["x"] * len(sending),
                "sent_ats": [None] * len(sending),
            }
            statements = ((transitions._CLAIM_MANY, claim), (transitions._FINISH_MANY, finish))
            for statement, params in statements:
                explain = text("EXPLAIN (FORMAT JSON) " + statement.text)
                plan = (await conn.execute(explain, params)).scalar_one()
                used = _index_names(plan)
                assert "pk_notifications" in used, used
                assert not used & {"ix_notifications_due", "ix_notifications_lease"}, used
            await conn.rollback()
    finally:
        await engine.dispose()
