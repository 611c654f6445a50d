"""`python -m bench.dashboard_overview`: how fast the dashboard's overview answers at 100k rows.

Loads 100 000 notifications (with their events, realistic payload sizes, a week of history and
a busy last hour) into the database `herald_bench_dashboard`, starts Herald's app in-process
(API role: the dashboard, no workers), signs in, and times two things over HTTP (httpx on the
ASGI app, so no network in the figure):

- cold: the overview's live partial when its cache has expired, so every sample runs the
  queries (a pause of DASHBOARD_REFRESH_SECONDS between samples);
- page: the whole overview page, cache warm or not, as a browser tab gets it;
- queries: the overview's queries alone, without HTTP or templates.

Prints median, p95, min and max per series and writes them as JSON (default
`bench/out/dashboard_overview.json`). The target is a cold median under 100 ms.

Options: `--rows N`, `--samples N`, `--reuse` (keep the loaded rows if the count matches),
`--out PATH`. Needs the local Postgres and Redis (BENCH_REDIS_URL, default database 10).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from herald.app import create_app
from herald.config import Settings
from herald.dashboard.overview import load_overview
from herald.dashboard.security import hash_password
from herald.db.migrate import migrate

ROOT = Path(__file__).resolve().parents[1]
DATABASE_URL = os.environ.get(
    "BENCH_DASHBOARD_DATABASE_URL",
    "postgresql+asyncpg://postgres@127.0.0.1:5432/herald_bench_dashboard",
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
USER = "bench"
PASSWORD = "bench-password"
REFRESH_SECONDS = 0.5
TARGET_MS = 100.0

# A week of history, one notification every ~6 s, plus ~3600 in the last hour. Statuses in
# the proportions of a healthy system: mostly sent, a few failed or cancelled, a small
# backlog of due, scheduled and in-flight ones.
_LOAD = """
INSERT INTO notifications (
    id, api_key_id, channel, recipient, subject, body, html, data, priority, send_at, reference,
    metadata, status, attempts, max_attempts, next_attempt_at, lease_expires_at, provider,
    provider_message_id, error, created_at, updated_at, sent_at)
SELECT
    gen_random_uuid(), :key, channel,
    CASE channel WHEN 'email' THEN 'user' || i || '@example.com'
                 WHEN 'push' THEN md5(i::text) || '\\:APA91b' || repeat(md5((i + 1)::text), 3)
                 ELSE '+4479' || lpad((i % 100000000)::text, 8, '0') END,
    CASE WHEN channel = 'email' THEN 'Your order #' || i || ' has shipped' END,
    'Hello, this is notification ' || i || '. ' || repeat('Some ordinary message text. ', 10),
    CASE WHEN channel = 'email'
         THEN '<html><body><p>' || repeat('Order ' || i || ' shipped. ', 60) || '</p></body></html>'
    END,
    CASE WHEN channel = 'push' THEN jsonb_build_object('order', i, 'kind', 'shipped') END,
    (ARRAY['normal', 'normal', 'normal', 'high', 'low'])[1 + i % 5],
    CASE WHEN status = 'scheduled' THEN now() + interval '1 day' END,
    'order-' || i,
    jsonb_build_object('tenant', 'acme', 'seq', i),
    status,
    CASE WHEN status IN ('scheduled', 'queued') THEN 0 WHEN status = 'retrying' THEN 2 ELSE 1 END,
    5,
    CASE WHEN status = 'scheduled' THEN now() + interval '1 day'
         WHEN status = 'queued' THEN created
         WHEN status = 'retrying' THEN now() + (i % 7 - 3) * interval '10 s' END,
    CASE WHEN status = 'sending' THEN now() + interval '60 s' END,
    CASE WHEN status IN ('sent', 'delivered', 'failed', 'sending') THEN 'log' END,
    CASE WHEN status IN ('sent', 'delivered') THEN 'log-' || md5(i::text) END,
    CASE WHEN status = 'failed' THEN 'twilio 21211: The ''To'' number is not a valid phone number.'
         WHEN status = 'retrying' THEN 'twilio HTTP 503: Service Unavailable' END,
    created,
    created + interval '2 s',
    CASE WHEN status IN ('sent', 'delivered') THEN created + interval '2 s' END
FROM (
    SELECT i,
           (ARRAY['email', 'sms', 'push', 'whatsapp'])[1 + (i * 7919) % 4] AS channel,
           CASE WHEN i <= :recent THEN now() - i * interval '1 s'
                ELSE now() - interval '1 hour' - (i - :recent) * (interval '7 days' / :rows) END
               AS created,
           CASE WHEN i <= 40 THEN (ARRAY['queued', 'sending', 'retrying', 'scheduled'])[1 + i % 4]
                WHEN i % 1000 < 880 THEN 'sent'
                WHEN i % 1000 < 930 THEN 'delivered'
                WHEN i % 1000 < 965 THEN 'failed'
                WHEN i % 1000 < 985 THEN 'cancelled'
                WHEN i % 1000 < 995 THEN 'scheduled'
                ELSE 'retrying' END AS status
    FROM generate_series(1, :rows) AS i
) AS generated
"""

_EVENTS = """
INSERT INTO notification_events (notification_id, status, attempt, detail, created_at)
SELECT id, 'queued', 0, 'accepted', created_at FROM notifications
UNION ALL
SELECT id, 'sending', 1, 'attempt 1 of 5 via log', created_at + interval '1 s'
  FROM notifications WHERE attempts > 0
UNION ALL
SELECT id, status, attempts, coalesce(error, 'log accepted it'), updated_at
  FROM notifications WHERE status IN ('sent', 'delivered', 'failed', 'retrying')
"""


def bench_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": DATABASE_URL,
        "redis_url": REDIS_URL,
        "enable_workers": False,
        "log_level": "WARNING",
        "log_format": "json",
        "dashboard_username": USER,
        "dashboard_password_hash": hash_password(PASSWORD),
        "dashboard_secret_key": "bench-dashboard-secret",
        "dashboard_refresh_seconds": REFRESH_SECONDS,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM notifications"))).scalar_one())


async def load(settings: Settings, rows: int, *, reuse: bool) -> dict[str, Any]:
    """Create and migrate the database, then (re)load `rows` notifications and their events."""
    await migrate(settings)
    engine = create_async_engine(settings.database_url)
    try:
        if reuse and await _count(engine) == rows:
            return {"loaded": False, "seconds": 0.0}
        started = time.perf_counter()
        async with engine.begin() as conn:
            await conn.execute(
                text("TRUNCATE notification_events, notifications, api_keys CASCADE")
            )
            key = (
                await conn.execute(
                    text(
                        "INSERT INTO api_keys (id, name, key_hash, prefix) VALUES "
                        "(gen_random_uuid(), 'bench', '\\x00', 'hk_bench') RETURNING id"
                    )
                )
            ).scalar_one()
            recent = min(3600, rows // 10)
            await conn.execute(text(_LOAD), {"key": key, "rows": rows, "recent": recent})
            await conn.execute(text(_EVENTS))
        # What autovacuum does soon after a bulk load: statistics and the visibility map (which
        # lets the grouped count be an index-only scan).
        async with engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM ANALYZE notifications"))
            await autocommit.execute(text("VACUUM ANALYZE notification_events"))
        return {"loaded": True, "seconds": round(time.perf_counter() - started, 2)}
    finally:
        await engine.dispose()


def summary(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "median_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(p95, 2),
        "min_ms": round(ordered[0], 2),
        "max_ms": round(ordered[-1], 2),
        "samples": len(ordered),
    }


async def _timed_get(client: httpx.AsyncClient, path: str) -> float:
    started = time.perf_counter()
    response = await client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(f"GET {path} answered {response.status_code}: {response.text[:300]}")
    return elapsed


async def measure(settings: Settings, samples: int) -> dict[str, Any]:
    app = create_app(settings)
    base = settings.dashboard_path.rstrip("/")
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # Litestar's ASGI types
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="http://herald") as client,
    ):
        login = await client.get(f"{base}/login")
        token = login.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        signed_in = await client.post(
            f"{base}/login",
            data={"username": USER, "password": PASSWORD, "csrf_token": token, "next": base},
        )
        if signed_in.status_code != 303:
            raise SystemExit(f"sign-in failed: {signed_in.status_code} {signed_in.text[:300]}")
        for _ in range(3):  # warm the connection pool and the templates
            await _timed_get(client, f"{base}/partials/overview")
        cold: list[float] = []
        page: list[float] = []
        for _ in range(samples):
            await asyncio.sleep(settings.dashboard_refresh_seconds + 0.05)
            cold.append(await _timed_get(client, f"{base}/partials/overview"))
            page.append(await _timed_get(client, f"{base}/"))
        # The queries alone (counts, last hour, paused queues, heartbeats), without HTTP or
        # templates: how much of the cold figure is the database.
        resources = app.state.resources
        queries: list[float] = []
        for _ in range(samples):
            started = time.perf_counter()
            await load_overview(resources.session_maker, resources.redis)
            queries.append((time.perf_counter() - started) * 1000)
    return {"cold_partial": summary(cold), "page": summary(page), "queries": summary(queries)}


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard_overview", description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--reuse", action="store_true", help="keep the rows if already loaded")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "out" / "dashboard_overview.json"
    )
    args = parser.parse_args(argv)
    for url in (DATABASE_URL, REDIS_URL):
        host = make_url(url).host if "+asyncpg" in url else url.split("//")[1].split(":")[0]
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(f"refusing to run against {host}: loopback only")

    settings = bench_settings()
    loading = await load(settings, args.rows, reuse=args.reuse)
    timings = await measure(settings, args.samples)
    result = {
        "benchmark": "dashboard_overview",
        "rows": args.rows,
        "target_ms": TARGET_MS,
        "load": loading,
        **timings,
        "meets_target": timings["cold_partial"]["median_ms"] < TARGET_MS,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
