"""What an operator sees of one delivery: every metric family with the right type and the
right movement, and log lines with context, masked addresses and no content or secrets."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import make_settings, running_app
from tests.notifications.conftest import auth, new_key, wait_status
from tests.support.process import HeraldProcess
from tests.support.standin import Answer, TwilioStandIn, accept

SMS = {"channel": "sms", "to": "+447911123456", "body": "Secret code 918273"}

FAMILIES = {
    "herald_http_requests": "counter",
    "herald_http_request_duration_seconds": "histogram",
    "herald_jobs_enqueued": "counter",
    "herald_jobs_started": "counter",
    "herald_jobs_succeeded": "counter",
    "herald_jobs_failed": "counter",
    "herald_jobs_retried": "counter",
    "herald_jobs_cancelled": "counter",
    "herald_job_duration_seconds": "histogram",
    "herald_job_pickup_latency_seconds": "histogram",
    "herald_jobs_in_flight": "gauge",
    "herald_queue_depth": "gauge",
    "herald_queue_deferred": "gauge",
    "herald_queue_in_progress": "gauge",
    "herald_queue_oldest_job_age_seconds": "gauge",
    "herald_notifications": "counter",
    "herald_provider_latency_seconds": "histogram",
    "herald_worker_restarts": "counter",
    "herald_worker_loop_up": "gauge",
    "herald_reconciler_runs": "counter",
    "herald_reconciler_recovered": "counter",
    "herald_rate_limit_waits": "counter",
    # Info metrics are exposed in the text format as gauges named *_info.
    "herald_role_info": "gauge",
    "herald_build_info": "gauge",
}


JOB = {"queue": "sms", "function": "deliver.sms"}


def parse(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(families: dict[str, Any], sample_name: str, **labels: str) -> float:
    name = sample_name.removesuffix("_total").removesuffix("_count")
    family = families.get(name)
    if family is None:
        return 0.0
    return sum(
        s.value
        for s in family.samples
        if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def fail_once(token: str, n: int) -> Answer:
    return (503, {"code": 20500, "message": "busy"}, {}) if n == 1 else accept(token, n)


@pytest.fixture
def standin() -> Iterator[TwilioStandIn]:
    server = TwilioStandIn(respond=fail_once).start()
    yield server
    server.stop()


async def test_a_delivery_moves_every_metric_family_by_the_right_amount(
    standin: TwilioStandIn,
) -> None:
    key = await new_key("metrics")
    settings = make_settings(retry_base_seconds=0.05, **standin.settings())
    async with running_app(settings) as (_, client):
        before = parse((await client.get("/metrics")).text)
        created = (await client.post("/v1/notifications", json=SMS, headers=auth(key))).json()
        await wait_status(client, key, created["id"])
        await client.get("/health/live")
        # The row is `sent` as soon as the outcome's batch commits; the job that wrote it
        # returns to arq (and counts as finished) a moment later: wait for that, not a sleep.
        deadline = time.monotonic() + 10
        while True:
            after = parse((await client.get("/metrics")).text)
            finished = value(after, "herald_job_duration_seconds_count", **JOB) - value(
                before, "herald_job_duration_seconds_count", **JOB
            )
            if finished >= 2 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)

    for name, kind in FAMILIES.items():
        assert name in after, f"{name} missing"
        assert after[name].type == kind, f"{name} is {after[name].type}, not {kind}"

    def moved(sample: str, **labels: str) -> float:
        return value(after, sample, **labels) - value(before, sample, **labels)

    job = JOB
    assert moved("herald_jobs_enqueued_total", **job) == 2  # first attempt, then the retry
    assert moved("herald_jobs_started_total", **job) == 2
    assert moved("herald_jobs_succeeded_total", **job) == 2
    assert moved("herald_jobs_failed_total", **job) == 0
    assert moved("herald_job_duration_seconds_count", **job) == 2
    assert moved("herald_job_pickup_latency_seconds_count", queue="sms") == 2
    assert value(after, "herald_jobs_in_flight", **job) == 0
    sms = {"channel": "sms", "provider": "twilio"}
    assert moved("herald_notifications_total", outcome="retried", **sms) == 1
    assert moved("herald_notifications_total", outcome="sent", **sms) == 1
    assert moved("herald_notifications_total", outcome="failed", **sms) == 0
    assert moved("herald_provider_latency_seconds_count", **sms) == 2
    http = {"method": "POST", "route": "/v1/notifications", "status": "202"}
    assert moved("herald_http_requests_total", **http) == 1
    assert (
        moved(
            "herald_http_request_duration_seconds_count", method="POST", route="/v1/notifications"
        )
        == 1
    )
    assert value(after, "herald_worker_loop_up", queue="sms") == 1
    assert value(after, "herald_role_info", role="unified", api="true", workers="true") == 1
    assert value(after, "herald_queue_depth", queue="sms") == 0
    # labels are bounded: no ids or addresses anywhere
    text = "\n".join(str(s.labels) for f in after.values() for s in f.samples)
    assert created["id"] not in text
    assert "+44" not in text


async def test_api_only_mode_moves_no_job_processing_series() -> None:
    key = await new_key("api-only")
    async with running_app(make_settings(enable_workers=False)) as (_, client):
        before = parse((await client.get("/metrics")).text)
        response = await client.post("/v1/notifications", json=SMS, headers=auth(key))
        assert response.status_code == 202
        after = parse((await client.get("/metrics")).text)
    job = {"queue": "sms", "function": "deliver.sms"}
    assert (
        value(after, "herald_jobs_enqueued_total", **job)
        - value(before, "herald_jobs_enqueued_total", **job)
        == 1
    )
    for sample in (
        "herald_jobs_started_total",
        "herald_jobs_succeeded_total",
        "herald_jobs_failed_total",
        "herald_notifications_total",
        "herald_job_duration_seconds_count",
    ):
        assert value(after, sample) == value(before, sample), sample
    assert value(after, "herald_role_info", role="api", workers="false") == 1


Start = Callable[..., HeraldProcess]


@pytest.mark.process
async def test_a_delivery_logs_context_and_masks_addresses_without_content(
    herald: Start, standin: TwilioStandIn
) -> None:
    key = await new_key("logs")
    process = herald(**standin.env(), RETRY_BASE_SECONDS="0.05")
    headers = {**auth(key), "X-Request-ID": "req-logs-1"}
    email = {
        "channel": "email",
        "to": "jane@example.com",
        "subject": "Hello Jane",
        "body": "Private text 5521",
    }
    ids = []
    for payload in (SMS, email):
        response = httpx.post(
            process.url + "/v1/notifications", json=payload, headers=headers, timeout=10
        )
        assert response.status_code == 202
        ids.append(response.json()["id"])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        statuses = [
            httpx.get(f"{process.url}/v1/notifications/{i}", headers=auth(key), timeout=5).json()[
                "status"
            ]
            for i in ids
        ]
        if statuses == ["sent", "sent"]:
            break
        time.sleep(0.1)
    process.stop()
    raw = process.logs()
    lines = [json.loads(line) for line in raw.splitlines() if line.startswith("{")]

    requests = [
        line for line in lines if line["event"] == "http.request" and line["method"] == "POST"
    ]
    assert len(requests) == 2
    for line in requests:
        assert line["route"] == "/v1/notifications"
        assert line["status"] == 202
        assert line["request_id"] == "req-logs-1"
        assert isinstance(line["duration_ms"], float)

    sms_id = ids[0]
    # One line per attempt at INFO: its outcome, with the job's context. A job that ends
    # normally says no more (job.started and a succeeded job.finished are DEBUG).
    assert not [line for line in lines if line["event"].startswith("job.")]
    attempts = [
        line
        for line in lines
        if line.get("notification_id") == sms_id and line["event"].startswith("notification.")
    ]
    assert [line["event"] for line in attempts] == ["notification.retrying", "notification.sent"]
    for line in attempts:
        assert line["queue"] == "sms"
        assert line["function"] == "deliver.sms"
        assert line["job_id"] == f"deliver:{sms_id}:{line['attempt']}"
    assert [line["attempt"] for line in attempts] == [1, 2]

    outcomes = [line for line in lines if line["event"].startswith("notification.")]
    assert {line["event"] for line in outcomes} == {"notification.retrying", "notification.sent"}
    assert "+4479******56" in raw
    assert "j***@example.com" in raw
    for secret in (
        "+447911123456",
        "jane@example.com",
        "918273",
        "Private text",
        "Hello Jane",
        key,
        "stand-in-token",
    ):
        assert secret not in raw, f"{secret!r} leaked into the logs"


def test_redactor_replaces_every_configured_secret_and_ignores_short_ones() -> None:
    from herald.logging import REDACTED, SecretRedactor

    redactor = SecretRedactor(["s3cr3t-token", "s3cr3t-token-longer", "abc", ""])
    line = '{"error": "auth s3cr3t-token-longer failed, then s3cr3t-token", "x": "abc"}'
    assert redactor.scrub(line) == (
        f'{{"error": "auth {REDACTED} failed, then {REDACTED}", "x": "abc"}}'
    )


def test_settings_list_their_credentials_for_redaction() -> None:
    from tests.conftest import make_settings

    settings = make_settings(
        twilio_auth_token="tok-123456",
        whatsapp_access_token="wa-654321",
        database_url="postgresql+asyncpg://herald:pg-pass-99@127.0.0.1/herald",
    )
    assert {"tok-123456", "wa-654321", "pg-pass-99"} <= set(settings.secret_values())
