"""The HTTP load generator, in a process of its own: `python -m bench.loadgen SPEC OUT`.

SPEC is a JSON file; the result is written to OUT as JSON. Runs under uvloop with
`concurrency` keep-alive connections of `bench.http_client` (httpx cost more CPU than the
servers it measured), opened (with `GET /health/live`) before the clock starts. Requests are
encoded before the clock starts too, so the generator spends as little CPU as it can while it
measures.

Modes:

- `submit`: POST `total` notifications (`bench.serve.payloads`), one per request to
  `/v1/notifications` (`batch` 1) or `batch` per request to `/v1/notifications/batch`, from
  `concurrency` workers that each send their next request as soon as the last one answered
  (closed loop). Latency is per request: send to response. With `per_message`, the requests
  are messages instead (`POST /v1/messages`, `bench.serve.message_payloads`), each making
  `per_message` notifications: `total / per_message` of them.
- `grpc_submit`: the same `total` notifications as single `SendNotification` calls through
  one `grpc.aio` channel to `grpc_target` (HTTP/2: the `concurrency` calls in flight share
  its connection), from `concurrency` closed-loop workers. The requests are serialized before
  the clock starts and the responses are not decoded, as the HTTP bodies are.
- `get`: `GET /v1/notifications/{id}` (ids chosen round-robin from `ids`) at a fixed `rate`
  for `duration` seconds, open loop: each request starts on its own schedule, whatever the
  ones before it are doing, and its latency is counted from its scheduled time, so a slow
  server cannot hide its slowness by slowing the generator down (coordinated omission).

The generator's own garbage collector is off while it measures (see `_no_gc_pauses`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import uvloop

from bench.http_client import Pool
from bench.pacing import Schedule
from bench.serve import message_payloads, payloads
from bench.stats import percentile


def _pool(spec: dict[str, Any]) -> Pool:
    return Pool(spec["url"], int(spec["concurrency"]), {"Authorization": f"Bearer {spec['key']}"})


@contextlib.contextmanager
def _no_gc_pauses() -> Iterator[None]:
    """No garbage collection in the generator while it measures: a full collection stalls its
    loop for tens of milliseconds, which would show up as server latency. Everything alive so
    far is frozen out of later collections, and the collector is off until the (bounded) run
    ends."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


async def _timed(worker: Callable[[], Awaitable[None]], concurrency: int) -> tuple[float, float]:
    """Run `concurrency` copies of `worker` with no GC pauses; (wall-clock start, seconds)."""
    with _no_gc_pauses():
        started = time.time()
        clock = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return started, time.perf_counter() - clock


def _summary(latencies_ms: list[float]) -> dict[str, float | None]:
    if not latencies_ms:
        return {"p50_ms": None, "p99_ms": None, "mean_ms": None, "max_ms": None}
    return {
        "p50_ms": percentile(latencies_ms, 50),
        "p99_ms": percentile(latencies_ms, 99),
        "mean_ms": sum(latencies_ms) / len(latencies_ms),
        "max_ms": max(latencies_ms),
    }


async def submit(spec: dict[str, Any]) -> dict[str, Any]:
    total, batch = int(spec["total"]), int(spec["batch"])
    concurrency = int(spec["concurrency"])
    items = payloads(total, spec.get("prefix", "n"), tuple(spec["channels"]))
    # A message makes `per_message` notifications (one per channel of its template).
    per_message = int(spec.get("per_message", 0))
    if per_message:
        path = "/v1/messages"
        bodies = [
            json.dumps(m).encode()
            for m in message_payloads(total // per_message, spec.get("prefix", "n"))
        ]
    elif batch == 1:
        path = "/v1/notifications"
        bodies = [json.dumps(item).encode() for item in items]
    else:
        path = "/v1/notifications/batch"
        bodies = [
            json.dumps({"notifications": items[i : i + batch]}).encode()
            for i in range(0, total, batch)
        ]
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors: list[str] = []
    accepted = 0
    next_body = 0

    pool = _pool(spec)
    try:
        await pool.open()
        requests = [
            pool.connections[0].prepare("POST", path, b, "application/json") for b in bodies
        ]
        idle = list(pool.connections)

        async def worker() -> None:
            nonlocal next_body, accepted
            connection = idle.pop()
            while next_body < len(requests):
                request = requests[next_body]
                next_body += 1
                sent = time.perf_counter()
                response = await connection.send(request)
                latencies.append((time.perf_counter() - sent) * 1000)
                statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
                if response.status_code == 202:
                    accepted += per_message or batch
                elif len(errors) < 5:
                    errors.append(f"{response.status_code}: {response.text[:300]}")

        started, elapsed = await _timed(worker, concurrency)
    finally:
        pool.close()
    return {
        "started_at": started,
        "finished_at": started + elapsed,
        "elapsed_s": elapsed,
        "requests": len(bodies),
        "accepted": accepted,
        "statuses": statuses,
        "errors": errors,
        **_summary(latencies),
    }


def grpc_request(item: dict[str, Any]) -> bytes:
    """A `SendNotificationRequest`, serialized, for one of `bench.serve.payloads`."""
    from herald.api.grpc.v1 import notifications_pb2 as pb

    notification = pb.NotificationInput(
        channel=pb.Channel.Value(f"CHANNEL_{item['channel'].upper()}"),
        to=item["to"],
        body=item["body"],
        reference=item["reference"],
        data=item.get("data", {}),
    )
    if "subject" in item:
        notification.subject = item["subject"]
    return pb.SendNotificationRequest(notification=notification).SerializeToString()


SEND_NOTIFICATION = "/herald.v1.NotificationService/SendNotification"


async def grpc_submit(spec: dict[str, Any]) -> dict[str, Any]:
    import grpc

    total, concurrency = int(spec["total"]), int(spec["concurrency"])
    items = payloads(total, spec.get("prefix", "n"), tuple(spec["channels"]))
    bodies = [grpc_request(item) for item in items]
    metadata = (("authorization", f"Bearer {spec['key']}"),)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors: list[str] = []
    accepted = 0
    next_body = 0

    async with grpc.aio.insecure_channel(spec["grpc_target"]) as channel:
        await asyncio.wait_for(channel.channel_ready(), 10)
        # No serializers: the bodies go as they are, and the responses stay bytes.
        send = channel.unary_unary(SEND_NOTIFICATION)

        async def worker() -> None:
            nonlocal next_body, accepted
            while next_body < len(bodies):
                body = bodies[next_body]
                next_body += 1
                sent = time.perf_counter()
                try:
                    await send(body, metadata=metadata, timeout=60)
                    code = "OK"
                except grpc.aio.AioRpcError as error:
                    code = error.code().name
                    if len(errors) < 5:
                        errors.append(f"{code}: {(error.details() or '')[:300]}")
                latencies.append((time.perf_counter() - sent) * 1000)
                statuses[code] = statuses.get(code, 0) + 1
                if code == "OK":
                    accepted += 1

        started, elapsed = await _timed(worker, concurrency)
    return {
        "started_at": started,
        "finished_at": started + elapsed,
        "elapsed_s": elapsed,
        "requests": len(bodies),
        "accepted": accepted,
        "statuses": statuses,
        "errors": errors,
        **_summary(latencies),
    }


async def get(spec: dict[str, Any]) -> dict[str, Any]:
    ids: list[str] = spec["ids"]
    rate, duration = float(spec["rate"]), float(spec["duration"])
    count = round(rate * duration)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors: list[str] = []

    pool = _pool(spec)
    try:
        await pool.open()
        # Warm up: the key lookup, the statement cache, each connection's first request.
        for notification_id in ids[:20]:
            response = await pool.request("GET", f"/v1/notifications/{notification_id}")
            if response.status_code != 200:
                raise RuntimeError(f"warm-up GET answered {response.status_code}")

        async def one(notification_id: str, due: float) -> None:
            response = await pool.request("GET", f"/v1/notifications/{notification_id}")
            latencies.append((time.perf_counter() - due) * 1000)
            statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
            if response.status_code != 200 and len(errors) < 5:
                errors.append(f"{response.status_code}: {response.text[:300]}")

        with _no_gc_pauses():
            tasks: list[asyncio.Task[None]] = []
            started = time.time()
            schedule = Schedule(rate)
            for n in range(count):
                due = await schedule.wait(n)
                tasks.append(asyncio.create_task(one(ids[n % len(ids)], due)))
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
            elapsed = time.perf_counter() - schedule.start
    finally:
        pool.close()
    return {
        "started_at": started,
        "elapsed_s": elapsed,
        "requests": count,
        "achieved_rate": count / elapsed,
        "schedule_lag_max_ms": schedule.worst_lag * 1000,
        "statuses": statuses,
        "errors": errors,
        **_summary(latencies),
    }


def main(argv: list[str]) -> None:
    spec_path, out = argv
    spec = json.loads(Path(spec_path).read_text())
    mode = {"submit": submit, "grpc_submit": grpc_submit, "get": get}[spec["mode"]]
    result = uvloop.run(mode(spec))
    Path(out).write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
