"""Live status: from the provider's acceptance to the moment a client knows.

One `herald serve` (API and workers, the `log` provider), a client of one API key, and
notifications sent one after another (each once the previous one is known to be `sent`, so
nothing queues behind). The clock: the notification's `sent_at` (written when the provider
accepted it) to the moment the client has the `sent` status, on the same machine's clock.

Variants: the WebSocket stream `/v1/notifications/stream` (an `event` message; the baseline)
and the REST read path (`GET /v1/notifications/{id}` polled every 10 ms, the best a polling
client can do without hammering the API harder).

Per run: p50 and p99 of that delay, and the mean.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from datetime import datetime
from typing import Any

import httpx
import websockets

from bench.core import Metric, Mode, Variant, register
from bench.serve import HeraldServe, ThroughHerald, payloads, prepare_database, start_during

POLL_SECONDS = 0.01
WARMUP = 3


@register
class Live(ThroughHerald):
    name = "live"
    title = "Provider acceptance to the client knowing: WebSocket stream vs polling GET"
    description = __doc__ or ""
    metrics = (
        Metric("p50_ms", "p50", "ms", "lower", log_scale=True),
        Metric("p99_ms", "p99", "ms", "lower", log_scale=True),
        Metric("mean_ms", "mean", "ms", "lower", log_scale=True),
    )
    variants = (
        Variant("herald-stream", "WebSocket stream", "herald", extra={"via": "stream"}),
        Variant("herald-poll", "REST GET every 10 ms", "herald", extra={"via": "poll"}),
    )
    baseline = "herald-stream"

    def params(self, mode: Mode) -> dict[str, Any]:
        return {"notifications": {"full": 300, "quick": 60, "tiny": 5}[mode]}

    def timeout(self, params: dict[str, Any]) -> float:
        return float(params["notifications"]) / 5 + 60

    async def child(self, variant: Variant, params: dict[str, Any]) -> dict[str, Any]:
        herald = HeraldServe()
        try:
            key = await start_during([herald], prepare_database())
            headers = {"Authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(base_url=herald.url, headers=headers, timeout=30) as http:
                if variant.extra["via"] == "stream":
                    delays = await _through_stream(herald, http, headers, params["notifications"])
                else:
                    delays = await _through_polling(http, params["notifications"])
        finally:
            await herald.stop()
        ordered = sorted(delays)
        return {
            "metrics": {
                "p50_ms": statistics.median(ordered) * 1000,
                "p99_ms": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000,
                "mean_ms": statistics.fmean(ordered) * 1000,
            },
            "info": {"notifications": len(ordered), "max_ms": ordered[-1] * 1000},
        }


async def _send(http: httpx.AsyncClient, index: int) -> str:
    response = await http.post("/v1/notifications", json=payloads(1, f"live{index}")[0])
    if response.status_code != 202:
        raise RuntimeError(f"send failed: {response.text[:300]}")
    return str(response.json()["id"])


async def _sent_at(http: httpx.AsyncClient, notification_id: str) -> float:
    body = (await http.get(f"/v1/notifications/{notification_id}")).json()
    return datetime.fromisoformat(body["sent_at"]).timestamp()


async def _through_stream(
    herald: HeraldServe, http: httpx.AsyncClient, headers: dict[str, str], total: int
) -> list[float]:
    url = herald.url.replace("http://", "ws://") + "/v1/notifications/stream"
    delays: list[float] = []
    async with websockets.connect(url, additional_headers=headers) as ws:
        for index in range(WARMUP + total):
            notification_id = await _send(http, index)
            async with asyncio.timeout(30):
                while True:
                    message = json.loads(await ws.recv())
                    if message.get("notification_id") == notification_id and (
                        message.get("status") == "sent"
                    ):
                        known = time.time()
                        break
            if index >= WARMUP:
                delays.append(known - await _sent_at(http, notification_id))
    return delays


async def _through_polling(http: httpx.AsyncClient, total: int) -> list[float]:
    delays: list[float] = []
    for index in range(WARMUP + total):
        notification_id = await _send(http, index)
        async with asyncio.timeout(30):
            while True:
                body = (await http.get(f"/v1/notifications/{notification_id}")).json()
                if body["status"] == "sent":
                    known = time.time()
                    break
                await asyncio.sleep(POLL_SECONDS)
        if index >= WARMUP:
            delays.append(known - datetime.fromisoformat(body["sent_at"]).timestamp())
    return delays
