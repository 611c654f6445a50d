"""Helpers for the tests that break things on purpose against real `herald serve` processes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.process import HeraldProcess
from tests.support.standin import TwilioStandIn

# Fast recovery for tests: reconcile every second, re-enqueue what is 2 s late, short leases.
FAST_RECOVERY = {
    "RECONCILE_INTERVAL_SECONDS": "1",
    "RECONCILE_GRACE_SECONDS": "2",
    "JOB_TIMEOUT_SECONDS": "5",
    "LEASE_MARGIN_SECONDS": "1",
    "RETRY_BASE_SECONDS": "0.2",
    "WORKER_RESTART_MAX_SECONDS": "1",
}


@pytest.fixture
def standin() -> Iterator[TwilioStandIn]:
    server = TwilioStandIn().start()
    yield server
    server.stop()


def sms_batch(count: int, prefix: str) -> dict[str, Any]:
    return {
        "notifications": [
            {
                "channel": "sms",
                "to": "+447911123456",
                "body": f"{prefix} {i}",
                "reference": f"{prefix}-{i}",
            }
            for i in range(count)
        ]
    }


def submit(
    process: HeraldProcess, key: str, count: int, prefix: str, batch: int = 1000
) -> list[str]:
    ids: list[str] = []
    for start in range(0, count, batch):
        size = min(batch, count - start)
        response = httpx.post(
            process.url + "/v1/notifications/batch",
            json=sms_batch(size, f"{prefix}{start}"),
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert response.status_code == 202, response.text
        ids += [n["id"] for n in response.json()["notifications"]]
    return ids


def count_by_status(process: HeraldProcess, key: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    cursor = None
    while True:
        url = process.url + "/v1/notifications?limit=200" + (f"&cursor={cursor}" if cursor else "")
        page = httpx.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=30).json()
        for item in page["items"]:
            counts[item["status"]] = counts.get(item["status"], 0) + 1
        cursor = page["next_cursor"]
        if not cursor:
            return counts


def wait_all_sent(process: HeraldProcess, key: str, total: int, timeout: float) -> float:
    """Wait until `total` notifications are sent; returns how long it took."""
    started = time.monotonic()
    counts: dict[str, int] = {}
    while time.monotonic() - started < timeout:
        counts = count_by_status(process, key)
        if counts.get("sent", 0) == total:
            return time.monotonic() - started
        time.sleep(0.5)
    raise AssertionError(f"not all sent after {timeout}s: {counts}")
