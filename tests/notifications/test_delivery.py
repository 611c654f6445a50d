"""Delivery through real providers: retries, permanent failures, priority, idempotent jobs."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import make_settings, running_app
from tests.notifications.conftest import auth, wait_status
from tests.support.process import free_port
from tests.support.standin import Answer, TwilioStandIn, accept

SMS = {"channel": "sms", "to": "+447911123456", "body": "Your code is 123456"}


def fail_first(times: int, status: int = 503, headers: dict[str, str] | None = None) -> Any:
    def respond(token: str, n: int) -> Answer:
        if n <= times:
            return status, {"code": 20500, "message": "try later"}, headers or {}
        return accept(token, n)

    return respond


@pytest.fixture
def standin() -> Iterator[TwilioStandIn]:
    server = TwilioStandIn().start()
    yield server
    server.stop()


async def test_transient_failures_retry_with_backoff_until_sent(
    standin: TwilioStandIn, api_key: str
) -> None:
    standin.respond = fail_first(2)
    settings = make_settings(retry_base_seconds=0.1, **standin.settings())
    async with running_app(settings) as (_, client):
        created = (await client.post("/v1/notifications", json=SMS, headers=auth(api_key))).json()
        done = await wait_status(client, api_key, created["id"])
    assert done["attempts"] == 3
    assert done["provider"] == "twilio"
    assert done["provider_message_id"].startswith("SM")
    statuses = [e["status"] for e in done["events"]]
    assert statuses == ["queued", "sending", "retrying", "sending", "retrying", "sending", "sent"]
    retries = [e for e in done["events"] if e["status"] == "retrying"]
    assert all("twilio" in e["detail"] and "retrying in" in e["detail"] for e in retries)
    assert standin.sends()[created["id"]] == 3
    # the request itself was right
    first = standin.received[0]
    assert (first.to, first.body) == (SMS["to"], SMS["body"])


async def test_permanent_failure_fails_at_once_with_the_providers_reason(
    standin: TwilioStandIn, api_key: str
) -> None:
    standin.respond = lambda token, n: (
        400,
        {"code": 21211, "message": "The 'To' number is not a valid phone number."},
        {},
    )
    async with running_app(make_settings(**standin.settings())) as (_, client):
        created = (await client.post("/v1/notifications", json=SMS, headers=auth(api_key))).json()
        done = await wait_status(client, api_key, created["id"], statuses=("failed",))
    assert done["attempts"] == 1
    assert "21211" in done["error"]
    assert done["events"][-1]["status"] == "failed"
    assert standin.sends()[created["id"]] == 1


async def test_spent_budget_fails_and_retry_after_is_honoured(
    standin: TwilioStandIn, api_key: str
) -> None:
    standin.respond = fail_first(99, status=429, headers={"Retry-After": "1"})
    settings = make_settings(max_attempts=2, retry_base_seconds=0.01, **standin.settings())
    async with running_app(settings) as (_, client):
        created = (await client.post("/v1/notifications", json=SMS, headers=auth(api_key))).json()
        done = await wait_status(client, api_key, created["id"], statuses=("failed",))
    assert done["attempts"] == 2
    assert done["error"].startswith("gave up after 2 attempts")
    retry = next(e for e in done["events"] if e["status"] == "retrying")
    assert "retrying in 1.00s" in retry["detail"]
    times = standin.times()
    assert times[1] - times[0] >= 0.95


async def test_a_duplicate_job_for_the_same_attempt_sends_once(
    standin: TwilioStandIn, api_key: str
) -> None:
    from herald.notifications.unit_of_work import deliver_job_name
    from herald.queue import JobRequest

    standin.delay = 0.3
    async with running_app(make_settings(**standin.settings())) as (app, client):
        created = (await client.post("/v1/notifications", json=SMS, headers=auth(api_key))).json()
        # arq is at-least-once: the same attempt may run twice (here under other job ids)
        jobs = app.state.resources.jobs
        await jobs.enqueue_many(
            [
                JobRequest(deliver_job_name("sms"), (created["id"], 1), job_id=f"dup-{i}")
                for i in range(3)
            ]
        )
        await wait_status(client, api_key, created["id"])
        await asyncio.sleep(0.5)
    assert standin.sends()[created["id"]] == 1


async def test_high_priority_overtakes_a_backlog(standin: TwilioStandIn, api_key: str) -> None:
    # Fill the queue while no worker runs, then let one worker with one slot drain it.
    api_only = make_settings(enable_workers=False)
    async with running_app(api_only) as (_, client):

        async def send(priority: str, n: int) -> list[str]:
            body = {
                "notifications": [
                    {**SMS, "priority": priority, "reference": f"{priority}-{i}"} for i in range(n)
                ]
            }
            response = await client.post(
                "/v1/notifications/batch", json=body, headers=auth(api_key)
            )
            return [item["id"] for item in response.json()["notifications"]]

        low = await send("low", 5)
        normal = await send("normal", 10)
        high = await send("high", 5)
    worker = make_settings(
        enable_api=False, worker_queues=["sms"], worker_concurrency=1, **standin.settings()
    )
    async with running_app(worker):
        for _ in range(200):
            if len(standin.received) >= 20:
                break
            await asyncio.sleep(0.05)
    order = [r.token for r in standin.received]
    assert set(order[:5]) == set(high)
    assert set(order[5:15]) == set(normal)
    assert set(order[15:]) == set(low)


class _Sink:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, envelope.rcpt_tos, envelope.content))
        return "250 OK"


async def test_email_goes_out_through_smtp_with_text_and_html(api_key: str) -> None:
    sink = _Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = make_settings(
            email_provider="smtp",
            smtp_host="127.0.0.1",
            smtp_port=port,
            email_from="noreply@herald.test",
        )
        async with running_app(settings) as (_, client):
            payload = {
                "channel": "email",
                "to": "jane@example.com",
                "subject": "Your order",
                "body": "It shipped.",
                "html": "<p>It <b>shipped</b>.</p>",
            }
            created = (
                await client.post("/v1/notifications", json=payload, headers=auth(api_key))
            ).json()
            done = await wait_status(client, api_key, created["id"])
    finally:
        controller.stop()
    assert done["provider"] == "smtp"
    (mail_from, rcpt_tos, content) = sink.messages[0]
    assert (mail_from, rcpt_tos) == ("noreply@herald.test", ["jane@example.com"])
    message = email.message_from_bytes(content, policy=email.policy.default)
    assert message["Subject"] == "Your order"
    assert message.get_body(("plain",)).get_content().strip() == "It shipped."  # type: ignore[union-attr]
    assert "<b>shipped</b>" in message.get_body(("html",)).get_content()  # type: ignore[union-attr]
