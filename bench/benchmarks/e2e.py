"""End-to-end notifications: submitted through the real HTTP API, delivered by `log`.

Herald runs as `herald serve` runs it in production (a subprocess: uvicorn with uvloop and
httptools, API and workers in one process) against the database `herald_bench` and Redis
database 10, both emptied before every run. A load generator in a process of its own
(`bench.loadgen`: its own HTTP/1.1 client, 32 keep-alive connections, each sending its next
request as soon as the last one answered) submits the notifications, spread evenly over the
four channels, all delivered by the default `log` provider. Delivery is followed in Postgres
with one query (`count(*)` and `max(sent_at)` of the `sent` rows), not through the API.

Per run:
- accepted/s: notifications / (last 202 - first request sent);
- delivered/s: notifications / (last `sent_at` - first request sent);
- p50 and p99 accept latency: per request (one notification, or a batch of 100);
- time until the last one is `sent`, from the first request;
- Herald's CPU time per notification (user + system time of the `herald serve` process from
  the first request to the last `sent`, over the notifications): what accepting and
  delivering one costs, and a figure that other work on the machine hardly moves.

Variants: single submissions (`POST /v1/notifications`, the baseline), batches of 100
(`POST /v1/notifications/batch`), single submissions over gRPC (`SendNotification`
through one `grpc.aio` channel to the same `herald serve`, at the same concurrency), and
messages (`POST /v1/messages`: one template with email and push content, to 100 stored
recipients round-robin, so each request makes two notifications, rendered at acceptance), the
same number of notifications.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from bench.core import Metric, Mode, Variant, register
from bench.serve import (
    CHANNELS,
    HeraldServe,
    Sent,
    ThroughHerald,
    message_payloads,
    payloads,
    prepare_database,
    prepare_messages,
    run_loadgen,
    start_during,
)

CONCURRENCY = 32
WARMUP = 40


@register
class EndToEnd(ThroughHerald):
    name = "e2e"
    title = "Notifications through the HTTP API and gRPC, delivered by `log` (32 in flight)"
    description = __doc__ or ""
    metrics = (
        Metric("accepted_per_s", "accepted/s", "notifications/s", "higher"),
        Metric("delivered_per_s", "delivered/s", "notifications/s", "higher"),
        Metric("p50_ms", "accept p50", "ms", "lower", log_scale=True),
        Metric("p99_ms", "accept p99", "ms", "lower", log_scale=True),
        Metric("last_sent_s", "last sent after", "s", "lower"),
        Metric("cpu_ms", "Herald CPU per notification", "ms", "lower"),
    )
    variants = (
        Variant("herald-single", "Herald, single submissions", "herald", extra={"batch": 1}),
        Variant("herald-batch100", "Herald, batches of 100", "herald", extra={"batch": 100}),
        Variant(
            "herald-grpc-single",
            "Herald, single submissions over gRPC",
            "herald",
            extra={"batch": 1, "grpc": True},
        ),
        Variant(
            "herald-messages",
            "Herald, messages (one template, email + push)",
            "herald",
            extra={"batch": 1, "per_message": 2},
        ),
    )
    baseline = "herald-single"

    def params(self, mode: Mode) -> dict[str, Any]:
        total = {"full": 4000, "quick": 200, "tiny": 100}[mode]
        return {"notifications": total, "concurrency": CONCURRENCY, "channels": list(CHANNELS)}

    def timeout(self, params: dict[str, Any]) -> float:
        return float(params["notifications"]) / 20 + 90

    async def child(self, variant: Variant, params: dict[str, Any]) -> dict[str, Any]:
        total = params["notifications"]
        herald = HeraldServe()
        sent = await Sent.open()
        try:
            key = await start_during([herald], prepare_database())
            # Warm up the server (pools, caches, the first request's imports) and wait for it
            # to be idle again, so the run starts from a warm, quiet process.
            per_message = variant.extra.get("per_message", 0)
            if per_message:
                await prepare_messages(herald.url, key)
            await _warm_up(
                herald, key, grpc=variant.extra.get("grpc", False), messages=per_message > 0
            )
            await sent.wait(WARMUP, timeout=30)
            cpu_before = herald.cpu()
            load = await run_loadgen(
                _spec(herald, key, total, variant, params, prefix="run"),
                timeout=self.timeout(params),
            )
            if load["accepted"] != total:
                raise RuntimeError(f"accepted {load['accepted']} of {total}: {load['errors']}")
            last_sent = await sent.wait(WARMUP + total, timeout=total / 20 + 30)
            cpu = herald.cpu() - cpu_before
            statuses = await sent.statuses()
        finally:
            await sent.close()
            await herald.stop()
        accept_s = load["finished_at"] - load["started_at"]
        deliver_s = last_sent - load["started_at"]
        return {
            "metrics": {
                "accepted_per_s": total / accept_s,
                "delivered_per_s": total / deliver_s,
                "p50_ms": load["p50_ms"],
                "p99_ms": load["p99_ms"],
                "last_sent_s": deliver_s,
                "cpu_ms": cpu * 1000 / total,
            },
            "info": {
                "requests": load["requests"],
                "accept_s": accept_s,
                "mean_ms": load["mean_ms"],
                "max_ms": load["max_ms"],
                "statuses": statuses,
                "measured_at": time.time(),
            },
        }


async def _warm_up(herald: HeraldServe, key: str, *, grpc: bool, messages: bool) -> None:
    """40 notifications: each tenth a single submission (over gRPC for the gRPC variant, so
    its server-side path is warm too; for the messages variant a message of two, the batch
    one smaller), the other nine a batch."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=herald.url, headers=headers, timeout=30) as client:
        for start in range(0, WARMUP, 10):
            items = payloads(10, f"warmup{start}")
            if messages:
                (body,) = message_payloads(1, f"warmup{start}")
                message = await client.post("/v1/messages", json=body)
                if message.status_code != 202:
                    raise RuntimeError(f"warm-up failed: {message.text[:300]}")
                items = items[1:]
            elif grpc:
                await _grpc_send(herald, key, items[0])
            else:
                single = await client.post("/v1/notifications", json=items[0])
                if single.status_code != 202:
                    raise RuntimeError(f"warm-up failed: {single.text[:300]}")
            batch = await client.post("/v1/notifications/batch", json={"notifications": items[1:]})
            if batch.status_code != 202:
                raise RuntimeError(f"warm-up failed: {batch.text[:300]}")


async def _grpc_send(herald: HeraldServe, key: str, item: dict[str, Any]) -> None:
    import grpc

    from bench.loadgen import SEND_NOTIFICATION, grpc_request

    async with grpc.aio.insecure_channel(herald.grpc_target) as channel:
        send = channel.unary_unary(SEND_NOTIFICATION)
        await send(grpc_request(item), metadata=(("authorization", f"Bearer {key}"),), timeout=30)


def _spec(
    herald: HeraldServe,
    key: str,
    total: int,
    variant: Variant,
    params: dict[str, Any],
    prefix: str,
) -> dict[str, Any]:
    return {
        "mode": "grpc_submit" if variant.extra.get("grpc") else "submit",
        "url": herald.url,
        "grpc_target": herald.grpc_target,
        "key": key,
        "total": total,
        "batch": variant.extra["batch"],
        "concurrency": params["concurrency"],
        "channels": params["channels"],
        "per_message": variant.extra.get("per_message", 0),
        "prefix": prefix,
    }
