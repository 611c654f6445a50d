"""Herald as deployed, for the benchmarks that go through the HTTP API.

`HeraldServe` runs `python -m herald serve` (real uvicorn with uvloop and httptools, the
workers in its lifespan) as a subprocess against the benchmark database and Redis, with any
settings given as environment variables (`ENABLE_WORKERS=false`, `WORKER_QUEUES=email`...).
Its output goes to a file, kept only to explain a failure.

The rest is what those benchmarks share: a clean database with one API key, notifications
made the way the API makes them (`payloads`, `insert_notifications`), the one Postgres query
that says how many are `sent` and when the last one was, the load generator in a process of
its own (`run_loadgen`), and resident memory read from `/proc`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar, cast

import asyncpg
import httpx

from bench.core import Benchmark
from bench.env import DATABASE_URL, REDIS_URL, ROOT, child_env, free_port, python

T = TypeVar("T")

CHANNELS = ("email", "sms", "push", "whatsapp")
_PUSH_TOKEN = "bench-device-token:APA91b" + "x" * 140


def asyncpg_dsn() -> str:
    return DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://", 1)


def herald_settings(**overrides: Any) -> Any:
    from herald.config import Settings

    values: dict[str, Any] = {"database_url": DATABASE_URL, "redis_url": REDIS_URL}
    values.update(overrides)
    return Settings(_env_file=None, **values)


# -- the database ----------------------------------------------------------------------------


_migrated: set[str] = set()


def migrate_database() -> None:
    """Create the benchmark database if needed and apply Herald's migrations (once per
    invocation of the suite: every benchmark that needs it calls this in `setup`)."""
    from herald.db.migrate import migrate

    if DATABASE_URL not in _migrated:
        asyncio.run(migrate(herald_settings()))
        _migrated.add(DATABASE_URL)


class ThroughHerald(Benchmark):
    """A benchmark that runs `herald serve`: the database is migrated before its runs."""

    def setup(self, params: dict[str, Any]) -> None:
        migrate_database()


async def prepare_database() -> str:
    """Empty every table of the (migrated) benchmark database and make one API key (stored
    as `herald keys create` stores it: only its hash)."""
    from herald.auth.keys import generate_key, hash_key

    key = generate_key()
    conn = await asyncpg.connect(asyncpg_dsn())
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename <> 'alembic_version'"
        )
        names = ", ".join(f'"{row["tablename"]}"' for row in tables)
        await conn.execute(f"TRUNCATE {names} CASCADE")
        await conn.execute(
            "INSERT INTO api_keys (id, name, key_hash, prefix)"
            " VALUES (gen_random_uuid(), $1, $2, $3)",
            "bench",
            hash_key(key),
            key[:10],
        )
    finally:
        await conn.close()
    return key


# The `messages` variant: one template with two channels, sent to stored recipients.
MESSAGE_TEMPLATE = "bench-welcome"
MESSAGE_RECIPIENTS = 100
_TEMPLATE_BODY = {
    "category": "account",
    "default_locale": "en",
    "locales": {
        "en": {
            "email": {
                "subject": "Welcome, {{ name }}",
                "text": "Hi {{ name }}, your order {{ order }} has shipped.",
                "html": "<p>Hi <b>{{ name }}</b>, your order {{ order }} has shipped.</p>",
            },
            "push": {"title": "Welcome", "body": "Hi {{ name }}, order {{ order }} shipped."},
        }
    },
}


async def prepare_messages(url: str, key: str) -> None:
    """Through the API, before the clock: the template, and the recipients with an email
    address and a push token each."""
    import httpx

    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        (
            await client.put(f"/v1/templates/{MESSAGE_TEMPLATE}", json=_TEMPLATE_BODY)
        ).raise_for_status()
        for i in range(MESSAGE_RECIPIENTS):
            recipient = f"/v1/recipients/bench-{i}"
            (await client.put(recipient, json={"email": f"user{i}@example.com"})).raise_for_status()
            token = {"token": f"{_PUSH_TOKEN}{i}"}
            (await client.post(f"{recipient}/push-tokens", json=token)).raise_for_status()


def message_payloads(count: int, prefix: str) -> list[dict[str, Any]]:
    """`count` messages of the benchmark template, round-robin over its recipients."""
    return [
        {
            "template": MESSAGE_TEMPLATE,
            "recipient": f"bench-{i % MESSAGE_RECIPIENTS}",
            "data": {"name": f"User {i}", "order": f"{prefix}-{i}"},
            "reference": f"{prefix}-{i}",
        }
        for i in range(count)
    ]


def payloads(count: int, prefix: str, channels: tuple[str, ...] = CHANNELS) -> list[dict[str, Any]]:
    """`count` valid notifications, round-robin over `channels`, with ordinary sizes."""
    items: list[dict[str, Any]] = []
    for i in range(count):
        channel = channels[i % len(channels)]
        body = f"Hello, this is notification {prefix}-{i}. Your order has shipped."
        item: dict[str, Any] = {"channel": channel, "body": body, "reference": f"{prefix}-{i}"}
        if channel == "email":
            item.update(to=f"user{i}@example.com", subject=f"Order {prefix}-{i} has shipped")
        elif channel == "push":
            item.update(to=_PUSH_TOKEN, data={"order": str(i)})
        else:
            item["to"] = "+447911123456"
        items.append(item)
    return items


async def insert_notifications(
    items: list[dict[str, Any]], *, sent: bool = False, enqueue: bool = False, chunk: int = 1000
) -> list[str]:
    """Store notifications as the API does (herald's own service code), from this process.

    `sent=True` then moves them to `sent` with the events a delivery writes (targets for
    GET); `enqueue=True` puts their delivery jobs on the queues, as the API does after its
    commit (a backlog for the workers). Returns the ids.
    """
    import msgspec
    from redis.asyncio import Redis
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from herald.notifications.model import NotificationInput
    from herald.notifications.transitions import accept
    from herald.notifications.unit_of_work import delivery_job
    from herald.queue import JobQueue, load_jobs

    engine = create_async_engine(DATABASE_URL)
    redis = Redis.from_url(REDIS_URL)
    jobs = JobQueue(redis, load_jobs())
    ids: list[str] = []
    try:
        async with engine.connect() as connection:
            owner = (await connection.execute(text("SELECT id FROM api_keys LIMIT 1"))).one().id
            await connection.commit()
            for start in range(0, len(items), chunk):
                parsed = [
                    msgspec.convert(item, NotificationInput)
                    for item in items[start : start + chunk]
                ]
                created, _ = await accept(connection, owner, parsed, 5)
                await connection.commit()
                ids += [str(n.id) for n in created]
                if enqueue:
                    await jobs.enqueue_many([delivery_job(n) for n in created])
            if sent:
                await connection.execute(text(_MARK_SENT), {"ids": ids})
                await connection.commit()
    finally:
        await redis.aclose()
        await engine.dispose()
    return ids


_MARK_SENT = """
WITH done AS (
    UPDATE notifications
       SET status = 'sent', attempts = 1, provider = 'log',
           provider_message_id = 'log-' || id, sent_at = now(), updated_at = now(),
           next_attempt_at = NULL
     WHERE id = ANY(CAST(:ids AS uuid[]))
    RETURNING id
)
INSERT INTO notification_events (notification_id, status, attempt, detail, created_at)
SELECT id, 'sending', 1, 'attempt 1 of 5 via log', now() FROM done
UNION ALL
SELECT id, 'sent', 1, 'log accepted it as log-' || id, now() FROM done
"""


class Sent:
    """`SELECT count(*), max(sent_at)` of the `sent` notifications: one query per look.

    `table` is Herald's `notifications`, or a baseline app's table with the same two columns.
    """

    def __init__(self, conn: asyncpg.Connection, table: str = "notifications") -> None:
        self.conn = conn
        self.table = table

    @classmethod
    async def open(cls, table: str = "notifications") -> Sent:
        return cls(await asyncpg.connect(asyncpg_dsn()), table)

    async def close(self) -> None:
        await self.conn.close()

    async def now(self) -> tuple[int, float | None]:
        """How many are sent, and the epoch time the last of them was."""
        row = await self.conn.fetchrow(
            f"SELECT count(*) AS n, max(sent_at) AS last FROM {self.table} WHERE status = 'sent'"
        )
        assert row is not None
        last = row["last"]
        return int(row["n"]), (last.timestamp() if last is not None else None)

    async def wait(self, total: int, timeout: float, interval: float = 0.05) -> float:
        """Poll until `total` are sent; returns when the last was (its `sent_at`, epoch)."""
        deadline = time.monotonic() + timeout
        count, last = 0, None
        while time.monotonic() < deadline:
            count, last = await self.now()
            if count >= total and last is not None:
                return last
            await asyncio.sleep(interval)
        raise TimeoutError(f"only {count} of {total} notifications sent after {timeout:.0f} s")

    async def statuses(self) -> dict[str, int]:
        rows = await self.conn.fetch(f"SELECT status, count(*) AS n FROM {self.table} GROUP BY 1")
        return {row["status"]: int(row["n"]) for row in rows}


# -- herald serve ----------------------------------------------------------------------------


class HeraldServe:
    """One `herald serve` process on a free loopback port (`command`: another app's module,
    such as a baseline's, run the same way with the same environment)."""

    command: tuple[str, ...] = ("herald", "serve")

    def __init__(self, name: str = "herald", **settings: str) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.grpc_port = free_port()
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        self.env = {
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            # gRPC stays on (as deployed), on a free port so that processes never clash.
            "GRPC_HOST": "127.0.0.1",
            "GRPC_PORT": str(self.grpc_port),
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "LOG_FORMAT": "json",
            "AUTO_MIGRATE": "false",
            "SHUTDOWN_GRACE_SECONDS": "2",
            "INSTANCE_NAME": f"bench-{name}",
            **settings,
        }
        self.proc: asyncio.subprocess.Process | None = None
        self._log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix=f"herald-bench-{name}-", suffix=".log", delete=False
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, timeout: float = 30.0) -> HeraldServe:
        await self.spawn()
        await self.wait_live(timeout)
        return self

    async def spawn(self) -> None:
        """Start `herald serve`, without waiting for it to answer."""
        # Only what the process needs: the benchmark's own settings must not leak in.
        env = {k: v for k, v in child_env().items() if not k.startswith("BENCH_")}
        env.update(self.env)
        self.proc = await asyncio.create_subprocess_exec(
            python(),
            "-m",
            *self.command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    async def wait_live(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            while True:
                assert self.proc is not None
                if self.proc.returncode is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self.proc.returncode}: {self.logs()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/health/ready")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.name} not ready after {timeout} s: {self.logs()}")
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout=20)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        self._log_file.close()
        Path(self._log_file.name).unlink(missing_ok=True)

    def logs(self) -> str:
        self._log_file.flush()
        return Path(self._log_file.name).read_text(errors="replace")[-3000:]

    def memory(self) -> dict[str, float]:
        return memory(self.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)


async def start_during(
    processes: list[HeraldServe], preparation: Awaitable[T], timeout: float = 30.0
) -> T:
    """Start the processes while `preparation` (emptying and filling the database) runs, and
    return its result. Start-up reads nothing the preparation writes, so overlapping the two
    saves about a second per run; nothing is measured until both are done."""
    result, *_ = await asyncio.gather(preparation, *(p.start(timeout) for p in processes))
    return cast(T, result)


async def stop_all(processes: list[HeraldServe]) -> None:
    await asyncio.gather(*(p.stop() for p in processes), return_exceptions=True)


# -- memory and CPU --------------------------------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def memory(pid: int) -> dict[str, float]:
    """Resident memory of a process in MiB: `rss` and its peak `hwm` (/proc/PID/status), and
    `pss` (/proc/PID/smaps_rollup: shared pages divided among the processes sharing them)."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields["rss" if name == "VmRSS" else "hwm"] = int(value.split()[0]) / 1024
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                fields["pss"] = int(line.split()[1]) / 1024
    return fields


# -- the load generator ----------------------------------------------------------------------


async def run_loadgen(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run `python -m bench.loadgen` with `spec` in a process of its own; its result."""
    with tempfile.TemporaryDirectory(prefix="herald-loadgen-") as tmp:
        spec_path = Path(tmp) / "spec.json"
        out = Path(tmp) / "out.json"
        spec_path.write_text(json.dumps(spec))
        proc = await asyncio.create_subprocess_exec(
            python(),
            "-m",
            "bench.loadgen",
            str(spec_path),
            str(out),
            cwd=ROOT,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), timeout=timeout)
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if proc.returncode != 0 or not out.exists():
            tail = output.decode(errors="replace")[-2000:]
            raise RuntimeError(f"the load generator exited with {proc.returncode}: {tail}")
        result: dict[str, Any] = json.loads(out.read_text())
    if os.environ.get("BENCH_DEBUG"):
        print("loadgen", {k: v for k, v in result.items() if k != "latencies_ms"})
    return result
