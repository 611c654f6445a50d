"""Group commit of single submissions, against the real Postgres and Redis.

Each test holds the first submission's commit in flight with a table lock taken from another
connection (`held_commit`), so that the submissions sent next must wait for it and form the
next group: the grouping is observed through `herald_submission_group_size` and the
waiting count, never through timing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from litestar import Litestar
from sqlalchemy.engine import make_url

from herald.notifications.submissions import SubmissionGroups
from tests.api.graphql.conftest import EMAIL as GRAPHQL_EMAIL
from tests.api.graphql.conftest import graphql
from tests.conftest import DATABASE_URL, make_settings, running_app
from tests.notifications.conftest import auth, new_key, wait_status
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually

SEND = "mutation Send($input: NotificationInput!) { sendNotification(input: $input) { id status } }"


def sms(i: int) -> dict[str, Any]:
    return {"channel": "sms", "to": "+447911123456", "body": f"group {i}", "reference": f"g-{i}"}


def _dsn() -> str:
    return make_url(DATABASE_URL).set(drivername="postgresql").render_as_string(False)


@dataclass
class Held:
    """`until_waiting(n)` returns once a commit is blocked and n submissions wait behind it;
    `connection` holds the lock (its transaction is rolled back at the end)."""

    until_waiting: Callable[[int], Awaitable[None]]
    connection: asyncpg.Connection


@asynccontextmanager
async def held_commit(groups: SubmissionGroups) -> AsyncIterator[Held]:
    """Lock `notifications` against inserts from another connection: the group in flight
    waits on it."""
    locker = await asyncpg.connect(_dsn())
    transaction = locker.transaction()
    await transaction.start()
    await locker.execute("LOCK TABLE notifications IN EXCLUSIVE MODE")

    async def until_waiting(count: int) -> None:
        async def ready() -> bool:
            # the submissions' insert, not the reconciler's or retention's statements (and a
            # fresh look: statistics views keep one snapshot per transaction)
            await locker.execute("SELECT pg_stat_clear_snapshot()")
            blocked = await locker.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE '%INSERT INTO notifications%'"
            )
            return bool(blocked) and groups.waiting >= count

        await eventually(ready, what=f"a commit in flight and {count} submissions waiting")

    try:
        yield Held(until_waiting, locker)
    finally:
        if not locker.is_closed():
            if locker.is_in_transaction():
                await transaction.rollback()
            await locker.close()


def group_sizes(metrics_text: str) -> dict[str, float]:
    """`herald_submission_group_size`'s count, sum and `le` buckets."""
    found: dict[str, float] = {}
    for line in metrics_text.splitlines():
        if line.startswith("herald_submission_group_size_"):
            name, value = line.rsplit(" ", 1)
            found[name.removeprefix("herald_submission_group_size_")] = float(value)
    return found


async def sizes(client: httpx.AsyncClient) -> dict[str, float]:
    return group_sizes((await client.get("/metrics")).text)


def groups_of(app: Litestar) -> SubmissionGroups:
    groups: SubmissionGroups = app.state.resources.use_cases.groups
    return groups


async def test_concurrent_submissions_over_rest_and_graphql_are_one_group() -> None:
    key = await new_key("group")
    async with running_app(make_settings()) as (app, client):
        before = await sizes(client)
        async with held_commit(groups_of(app)) as held:
            first = asyncio.create_task(
                client.post("/v1/notifications", json=sms(0), headers=auth(key))
            )
            await held.until_waiting(0)
            rest = [
                asyncio.create_task(
                    client.post("/v1/notifications", json=sms(i), headers=auth(key))
                )
                for i in range(1, 9)
            ]
            over_graphql = [
                asyncio.create_task(
                    graphql(client, key, SEND, input={**GRAPHQL_EMAIL, "reference": f"gq-{i}"})
                )
                for i in range(2)
            ]
            await held.until_waiting(10)
        responses = [await first] + [await r for r in rest]
        answers = [await g for g in over_graphql]
        after = await sizes(client)
        assert [r.status_code for r in responses] == [202] * 9
        assert [a["data"]["sendNotification"]["status"] for a in answers] == ["QUEUED"] * 2
        ids = {r.json()["id"] for r in responses} | {
            a["data"]["sendNotification"]["id"] for a in answers
        }
        assert len(ids) == 11
        # two commits: the first alone, then the ten that waited for it, together
        assert after["count"] - before.get("count", 0) == 2
        assert after["sum"] - before.get("sum", 0) == 11
        assert after['bucket{le="8.0"}'] - before.get('bucket{le="8.0"}', 0) == 1
        assert after['bucket{le="16.0"}'] - before.get('bucket{le="16.0"}', 0) == 2
        # each one's own row, reference and delivery
        for response in responses:
            body = response.json()
            done = await wait_status(client, key, body["id"])
            assert done["reference"] == body["reference"]
            assert [e["status"] for e in done["events"]] == ["queued", "sending", "sent"]


async def test_a_group_keeps_each_requests_validation_errors_and_idempotency() -> None:
    key = await new_key("group-rules")
    other = await new_key("group-other")
    async with running_app(make_settings()) as (app, client):
        replayed = await client.post(
            "/v1/notifications", json=sms(100), headers={**auth(key), "Idempotency-Key": "done"}
        )
        assert replayed.status_code == 202

        def post(body: dict[str, Any], api_key: str = key, idem: str | None = None) -> Any:
            headers = {**auth(api_key), **({"Idempotency-Key": idem} if idem else {})}
            return asyncio.create_task(client.post("/v1/notifications", json=body, headers=headers))

        async with held_commit(groups_of(app)) as held:
            first = post(sms(0))
            await held.until_waiting(0)
            plain = [post(sms(i)) for i in (1, 2)]
            same_key = post(sms(3), idem="k1")
            other_owner = post(sms(3), api_key=other, idem="k1")  # another key's "k1"
            await held.until_waiting(4)
            # answered while the group waits: rules and keys are checked before it
            invalid = await client.post(
                "/v1/notifications", json={"channel": "sms", "to": "nope"}, headers=auth(key)
            )
            repeat = await client.post(
                "/v1/notifications", json=sms(3), headers={**auth(key), "Idempotency-Key": "k1"}
            )
            reused = await client.post(
                "/v1/notifications", json=sms(4), headers={**auth(key), "Idempotency-Key": "k1"}
            )
            replay = await client.post(
                "/v1/notifications", json=sms(100), headers={**auth(key), "Idempotency-Key": "done"}
            )
        assert invalid.status_code == 422
        assert {p["field"] for p in invalid.json()["errors"]} >= {"to", "body"}
        assert repeat.status_code == 409  # the same key, still being processed
        assert reused.status_code == 422  # the same key with another body
        assert replay.status_code == 202
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.json()["id"] == replayed.json()["id"]

        accepted = [await t for t in (first, *plain, same_key, other_owner)]
        assert [r.status_code for r in accepted] == [202] * 5
        assert len({r.json()["id"] for r in accepted}) == 5
        # after the group's commit, each key replays its own request's notification
        again = await client.post(
            "/v1/notifications", json=sms(3), headers={**auth(key), "Idempotency-Key": "k1"}
        )
        again_other = await client.post(
            "/v1/notifications", json=sms(3), headers={**auth(other), "Idempotency-Key": "k1"}
        )
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["id"] == (await same_key).json()["id"]
        assert again_other.json()["id"] == (await other_owner).json()["id"]
        assert again.json()["id"] != again_other.json()["id"]


async def test_a_group_meeting_a_postgres_outage_answers_each_503_and_stores_nothing() -> None:
    key = await new_key("group-outage")
    url = make_url(DATABASE_URL)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    via_proxy = url.set(port=proxy.port).render_as_string(hide_password=False)
    settings = make_settings(database_url=via_proxy, database_timeout_seconds=2)
    try:
        async with running_app(settings) as (app, client):

            def post(i: int, idem: str | None = None) -> Any:
                headers = {**auth(key), **({"Idempotency-Key": idem} if idem else {})}
                return asyncio.create_task(
                    client.post("/v1/notifications", json=sms(i), headers=headers)
                )

            async with held_commit(groups_of(app)) as held:
                first = post(0)
                await held.until_waiting(0)
                waiting = [post(1), post(2, idem="outage-1"), post(3, idem="outage-2"), post(4)]
                await held.until_waiting(4)
                proxy.pause()  # the commit in flight and the group behind it meet the outage
                answers = [await first] + [await t for t in waiting]
            assert [a.status_code for a in answers] == [503] * 5
            for answer in answers:
                assert answer.headers["content-type"].startswith("application/problem+json")
            proxy.resume()
            conn = await asyncpg.connect(_dsn())
            try:
                owner = uuid.UUID(await conn.fetchval("SELECT id::text FROM api_keys"))
                stored = await conn.fetchval(
                    "SELECT count(*) FROM notifications WHERE api_key_id = $1", owner
                )
                events = await conn.fetchval("SELECT count(*) FROM notification_events")
                results = await conn.fetch("SELECT key, result_ids FROM idempotency_keys")
            finally:
                await conn.close()
            assert (stored, events) == (0, 0)  # nothing half-written
            # No key names a result. Releasing them failed too (Postgres was away), so, as for
            # any request that died mid-way, they are taken over after a minute.
            assert all(r["result_ids"] is None for r in results), results

            async def back() -> bool:
                response = await client.post("/v1/notifications", json=sms(5), headers=auth(key))
                return response.status_code == 202

            await eventually(
                back, timeout=30, what="submissions to go through once Postgres is back"
            )
    finally:
        proxy.stop()


async def test_a_lone_submission_is_written_at_once() -> None:
    """With nothing else arriving, each submission is its own group, even with a long bound:
    the bound only holds a group while more submissions keep arriving."""
    key = await new_key("group-alone")
    async with running_app(make_settings(submission_group_wait_ms=50)) as (_, client):
        before = await sizes(client)
        for i in range(3):
            response = await client.post("/v1/notifications", json=sms(i), headers=auth(key))
            assert response.status_code == 202
        after = await sizes(client)
    assert after["count"] - before.get("count", 0) == 3
    assert after['bucket{le="1.0"}'] - before.get('bucket{le="1.0"}', 0) == 3


async def test_a_bad_neighbour_in_a_group_fails_only_itself() -> None:
    """One member's row cannot be stored (its API key was deleted after the key was checked
    and cached): the group is retried one by one, the others are stored all the same."""
    key = await new_key("group-good")
    doomed = await new_key("group-doomed")
    async with running_app(make_settings()) as (app, client):
        # both keys checked (and cached) before the group; `doomed` has no rows, so it can go
        for api_key in (key, doomed):
            assert (await client.get("/v1/notifications", headers=auth(api_key))).status_code == 200
        async with held_commit(groups_of(app)) as held:
            first = asyncio.create_task(
                client.post("/v1/notifications", json=sms(0), headers=auth(key))
            )
            await held.until_waiting(0)
            good = asyncio.create_task(
                client.post("/v1/notifications", json=sms(1), headers=auth(key))
            )
            bad = asyncio.create_task(
                client.post("/v1/notifications", json=sms(2), headers=auth(doomed))
            )
            await held.until_waiting(2)
            # in the lock's transaction, committed before the group's insert goes on
            await held.connection.execute("DELETE FROM api_keys WHERE name = 'group-doomed'")
            await held.connection.execute("COMMIT")
        assert (await first).status_code == 202
        assert (await good).status_code == 202
        assert (await bad).status_code != 202
        done = await wait_status(client, key, (await good).json()["id"])
        assert done["reference"] == "g-1"
