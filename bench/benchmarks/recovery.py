"""Recovery after a SIGKILL: how soon the deliveries a killed process had in flight go out.

A Twilio stand-in (a thread of this process on a loopback port, the SMS channel's real wire
protocol) accepts each request and holds its answer. Process A (`herald serve`, SMS at the
stand-in, 20 SMS jobs at once) takes N SMS notifications and calls the stand-in for every
one; when all N are at the stand-in, a second replica B starts, and once B's own heartbeat
has run long enough to be trusted (`RECOVERY_SECONDS` and a beat: until then it recovers by
leases only), A gets SIGKILL and the stand-in starts answering at once. Per run, from the
kill: when the first and the last of the N are `sent` again (B's deliveries, `sent_at`).

Variants:
- Herald (the baseline for the ratio is the next one): heartbeats as shipped,
  `RECOVERY_SECONDS` 10 (4 with `--tiny`).
- leases only: `RECOVERY_SECONDS` so long that no heartbeat is ever old enough, which leaves
  the lease (job timeout 60 s + 5 s margin; 20 + 1 s with `--quick` and `--tiny`) and the
  reconciler's pass every `RECONCILE_INTERVAL_SECONDS` (10 s; 1 s with `--quick` and
  `--tiny`): how it was before heartbeats. Only the full run's figure is the shipped lease.
  The lease runs from A's claim, about `RECOVERY_SECONDS` + 3 s before the kill.

Both variants set the provider timeout to the job timeout, so that A's held calls neither time
out nor retry before the kill.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from bench.core import Metric, Mode, Variant, register
from bench.serve import HeraldServe, Sent, ThroughHerald, prepare_database, stop_all
from herald.queue.control import beat_seconds

ACCOUNT = "AC0123456789"


class _TwilioStandIn:
    """Twilio's `Messages.json`: holds every answer until `release()`."""

    def __init__(self) -> None:
        self.received = 0
        self._released = threading.Event()
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with stand_in._lock:
                    stand_in.received += 1
                stand_in._released.wait(timeout=300)
                payload = json.dumps({"sid": f"SM{time.time_ns()}", "status": "queued"}).encode()
                try:
                    self.send_response(201)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the process that asked was killed: the point of this benchmark

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def env(self) -> dict[str, str]:
        return {
            "SMS_PROVIDER": "twilio",
            "TWILIO_ACCOUNT_SID": ACCOUNT,
            "TWILIO_AUTH_TOKEN": "stand-in-token",
            "TWILIO_FROM": "+15550001111",
            "TWILIO_BASE_URL": f"http://127.0.0.1:{self._server.server_address[1]}",
        }

    def release(self) -> None:
        self._released.set()

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()


@register
class Recovery(ThroughHerald):
    name = "recovery"
    title = "Redelivery after SIGKILL of the process with the deliveries in flight"
    description = __doc__ or ""
    metrics = (
        Metric("first_s", "first sent again", "s", "lower"),
        Metric("last_s", "last sent again", "s", "lower"),
    )
    variants = (
        Variant("herald", "Herald, heartbeats (RECOVERY_SECONDS 10; 4 with --tiny)", "herald"),
        Variant("leases-only", "leases only (no heartbeat ever old enough)", "herald"),
    )
    baseline = "leases-only"

    def params(self, mode: Mode) -> dict[str, Any]:
        full = mode == "full"
        return {
            "notifications": 20,
            "recovery_seconds": 4.0 if mode == "tiny" else 10.0,
            # The provider's timeout as long as the job's: A's calls stay held at the stand-in
            # (not timed out and retried) until the kill.
            "lease": {
                "JOB_TIMEOUT_SECONDS": "60" if full else "20",
                "PROVIDER_TIMEOUT_SECONDS": "60" if full else "20",
                "LEASE_MARGIN_SECONDS": "5" if full else "1",
                "RECONCILE_INTERVAL_SECONDS": "10" if full else "1",
            },
        }

    def timeout(self, params: dict[str, Any]) -> float:
        return 180.0

    async def child(self, variant: Variant, params: dict[str, Any]) -> dict[str, Any]:
        total = params["notifications"]
        recovery = params["recovery_seconds"]
        settings = {
            **params["lease"],
            "RECOVERY_SECONDS": str(recovery if variant.key == "herald" else 86400),
        }
        key = await prepare_database()
        stand_in = _TwilioStandIn()
        first = HeraldServe("a", **stand_in.env(), **settings, QUEUE_CONCURRENCY=f"sms={total}")
        second = HeraldServe("b", **stand_in.env(), **settings)
        sent = await Sent.open()
        try:
            await first.start()
            await _submit(first, key, total)
            await _until(lambda: stand_in.received >= total, 30, "all at the stand-in")
            await second.start()
            # B trusts heartbeats once its own has run RECOVERY_SECONDS and a beat (and a
            # loop turn of its maintenance, at most half a second, to look again).
            await asyncio.sleep(recovery + beat_seconds(recovery) + 0.5)
            assert first.proc is not None
            first.proc.kill()
            await first.proc.wait()
            killed_at = time.time()
            stand_in.release()
            await sent.wait(total, timeout=120)
            times = sorted(
                row["sent_at"].timestamp() - killed_at
                for row in await sent.conn.fetch(
                    "SELECT sent_at FROM notifications WHERE status = 'sent'"
                )
            )
        finally:
            await sent.close()
            await stop_all([first, second])
            stand_in.stop()
        return {
            "metrics": {"first_s": times[0], "last_s": times[-1]},
            "info": {"redelivered": len(times), "at_stand_in": stand_in.received},
        }


async def _submit(server: HeraldServe, key: str, total: int) -> None:
    body = {
        "notifications": [
            {"channel": "sms", "to": "+447911123456", "body": f"recovery {i}"} for i in range(total)
        ]
    }
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await client.post(
            "/v1/notifications/batch", json=body, headers={"Authorization": f"Bearer {key}"}
        )
    if response.status_code != 202:
        raise RuntimeError(f"submission refused: {response.status_code} {response.text[:300]}")


async def _until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not {what} after {timeout} s")
        await asyncio.sleep(0.02)
