"""Error reports to Sentry, against a local stand-in for the DSN: tags, and no PII."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from herald.config import Settings
from herald.queue import JobQueue, registry
from herald.reporting import Scrubber
from tests.conftest import REDIS_URL
from tests.notifications.conftest import new_key
from tests.support.process import HeraldProcess

Start = Callable[..., HeraldProcess]

EMAIL = "canary.person@example.com"
PHONE = "+447700900123"
TOKEN = "canary-twilio-token-77aa"


class SentryStandIn:
    """Sentry's envelope endpoint: records every event it is sent."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.events: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        server.expect_request("/api/1/envelope/").respond_with_handler(self._envelope)

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.server.port}/1"

    def _envelope(self, request: Request) -> Response:
        body = request.get_data()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.raw.append(body)
        lines = body.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                self.events.append(json.loads(payload))
        return Response("{}", content_type="application/json")

    def wait_for_events(self, count: int, timeout: float = 20) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.events) < count:
            assert time.monotonic() < deadline, f"{len(self.events)} events: {self.raw}"
            time.sleep(0.05)
        return self.events


@pytest.mark.process
async def test_a_failing_job_is_reported_with_its_tags_and_without_pii(
    herald: Start, httpserver: HTTPServer
) -> None:
    sentry = SentryStandIn(httpserver)
    key = await new_key("sentry")
    herald(SENTRY_DSN=sentry.dsn, TWILIO_AUTH_TOKEN=TOKEN)
    async with aioredis.Redis.from_url(REDIS_URL) as client:
        await JobQueue(client, registry).enqueue("test.crash_loudly", key, EMAIL, PHONE)
    (event,) = sentry.wait_for_events(1)
    tags = event["tags"]
    assert tags["queue"] == "a"
    assert tags["function"] == "test.crash_loudly"
    assert tags["job_id"]
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert exception["value"] == "could not reach [email] or [phone] with [api key]"
    everything = b"".join(sentry.raw).decode()
    for secret in (key, EMAIL, PHONE, TOKEN):
        assert secret not in everything
    assert all("vars" not in frame for frame in exception["stacktrace"]["frames"])
    assert "request" not in event
    assert "breadcrumbs" not in event or not event["breadcrumbs"]


def test_the_scrubber_removes_credentials_addresses_and_contexts() -> None:
    settings = Settings(_env_file=None, twilio_auth_token=TOKEN)  # type: ignore[call-arg]
    scrub = Scrubber(settings.secret_values())
    event = {
        "exception": {
            "values": [
                {
                    "type": "ValueError",
                    "value": f"token {TOKEN} for {EMAIL} at {PHONE} key hk_{'a' * 30}",
                    "stacktrace": {"frames": [{"function": "f", "vars": {"x": EMAIL}}]},
                }
            ]
        },
        "request": {"headers": {"Authorization": "Bearer hk_x"}},
        "user": {"email": EMAIL},
        "extra": {"body": "hello"},
        "breadcrumbs": {"values": [{"message": EMAIL}]},
        "message": f"to {EMAIL}",
    }
    scrubbed = scrub(event, {})
    assert json.dumps(scrubbed).count("canary") == 0
    assert scrubbed["exception"]["values"][0]["value"] == (
        "token [redacted] for [email] at [phone] key [api key]"
    )
    assert set(scrubbed) == {"exception", "message"}
