"""`python -m bench.costs`: what one notification costs Postgres, Redis and Herald, measured.

The capacity model in docs/scaling.md is built from these figures; rerun this after a change
to the hot path and update the model from its output. One `herald serve` (API and workers,
every channel on the `log` provider, as deployed but for the providers) runs against:

- Postgres: the machine's, database `herald_bench_costs` (`BENCH_COSTS_DATABASE_URL`),
  created, migrated and emptied here. Nothing else uses that database, so its counters in
  `pg_stat_database` / `pg_stat_user_tables` are Herald's (less this script's own polls,
  which are subtracted). Statements are counted in Herald itself (`bench/cost_probe.py`,
  loaded with `JOB_MODULES`), and by pg_stat_statements too when the server preloads it.
- Redis: a private `redis-server` started here on a free loopback port (database 13), so that
  `INFO commandstats` and `INFO cpu` are Herald's alone (the machine's Redis is shared, and
  those counters are server-wide).

Phases, each measured as a difference of counters taken before and after:

1. warm-up (not reported);
2. idle: the background work of one replica (heartbeats, pause polling, the reconciler), per
   second; subtracted from the load phases over their duration;
3. `single`: N notifications, one `POST /v1/notifications` each, 16 at a time;
4. `batch`: N notifications in `POST /v1/notifications/batch` requests of 100.

A load phase ends when every notification is `sent`. Reported per notification: Herald's CPU
(user + system, /proc), the CPU of the Postgres backends serving Herald and of the private
Redis, SQL statements by kind, transactions, rows written per table, Redis commands by name,
Redis network bytes. The throughput is what this machine managed (2 shared cores, the load
generator in the same machine): a sanity figure, not a capacity.

Options: `-n N` (default 3000), `--idle SECONDS` (10), `--out PATH` (default
`bench/results/costs.json`), `--setting NAME=VALUE` for herald serve (repeatable; e.g. with
`BENCH_COSTS_DATABASE_URL` at a PgBouncer, `--setting DATABASE_POOL_MODE=transaction`).
Needs `redis-server` on the PATH and Postgres at 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis

from bench.env import ROOT, free_port
from bench.serve import HeraldServe, cpu_seconds, payloads

DATABASE_URL = os.environ.get(
    "BENCH_COSTS_DATABASE_URL",
    "postgresql+asyncpg://postgres@127.0.0.1:5432/herald_bench_costs",
)
REDIS_DB = 13
_DSN = DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://", 1)
_DATABASE = DATABASE_URL.rsplit("/", 1)[1]


class PrivateRedis:
    """A redis-server of this run's own: its counters are Herald's alone."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="herald-costs-redis-")
        program = shutil.which("redis-server")
        if program is None:
            raise SystemExit("bench.costs needs redis-server on the PATH")
        self.proc = subprocess.Popen(
            [
                *(program, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
                *("--appendonly", "no", "--dir", self.dir, "--maxmemory-policy", "noeviction"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.client = redis.Redis(port=self.port, db=REDIS_DB)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/{REDIS_DB}"

    def counters(self) -> dict[str, float]:
        info = self.client.info("all")
        values = {
            "cpu_seconds": float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
            "commands": float(info["total_commands_processed"]),
            "net_in_bytes": float(info["total_net_input_bytes"]),
            "net_out_bytes": float(info["total_net_output_bytes"]),
        }
        for name, stats in info.items():
            if name.startswith("cmdstat_"):
                values[f"command.{name.removeprefix('cmdstat_')}"] = float(stats["calls"])
        return values

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


async def prepare_database() -> str:
    """Create and migrate the database if needed, empty it, and make one API key."""
    from herald.auth.keys import generate_key, hash_key
    from herald.config import Settings
    from herald.db.migrate import migrate

    await migrate(Settings(_env_file=None, database_url=DATABASE_URL))  # type: ignore[call-arg]
    key = generate_key()
    conn = await asyncpg.connect(_DSN)
    try:
        await conn.execute(
            "TRUNCATE notification_events, notifications, idempotency_keys, api_keys CASCADE"
        )
        await conn.execute(
            "INSERT INTO api_keys (id, name, key_hash, prefix)"
            " VALUES (gen_random_uuid(), 'costs', $1, $2)",
            hash_key(key),
            key[:10],
        )
    finally:
        await conn.close()
    return key


class Postgres:
    """Counters of the benchmark database, and the CPU of the backends serving it."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.own_statements = 0  # this script's, subtracted from the transaction count
        self.statements_available = False
        # CPU seconds of the backends, summed over each backend's increments since it was
        # first seen (a backend that ends loses only its last interval).
        self.backend_cpu_seconds = 0.0
        self._last_cpu: dict[int, float] = {}
        self._sampled = False

    async def setup(self) -> None:
        try:
            await self.conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await self.conn.fetchval("SELECT count(*) FROM pg_stat_statements")
            self.statements_available = True
        except asyncpg.PostgresError:
            self.statements_available = False  # not in shared_preload_libraries

    async def _fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        self.own_statements += 1
        return list(await self.conn.fetch(query, *args))

    async def counters(self) -> dict[str, float]:
        await asyncio.sleep(3)  # backends report their statistics at most once a second
        (db,) = await self._fetch(
            "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted,"
            " tup_returned, tup_fetched FROM pg_stat_database WHERE datname = $1",
            _DATABASE,
        )
        values = {f"db.{k}": float(v) for k, v in dict(db).items()}
        for row in await self._fetch(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del, idx_scan, seq_scan"
            " FROM pg_stat_user_tables"
        ):
            for column in ("n_tup_ins", "n_tup_upd", "n_tup_hot_upd", "n_tup_del", "idx_scan"):
                values[f"table.{row['relname']}.{column}"] = float(row[column] or 0)
        if self.statements_available:
            rows = await self._fetch(
                "SELECT sum(calls) AS calls FROM pg_stat_statements s JOIN pg_database d"
                " ON d.oid = s.dbid WHERE d.datname = $1",
                _DATABASE,
            )
            values["pgss.calls"] = float(rows[0]["calls"] or 0)
        values["backend_cpu_seconds"] = await self.backend_cpu()
        values["own_statements"] = float(self.own_statements)
        return values

    async def backend_cpu(self) -> float:
        """The CPU the database's backends used since the first look, summed per backend."""
        for pid in _backends():
            try:
                used = cpu_seconds(pid)
            except OSError:
                continue  # ended meanwhile
            # A backend that was there at the first look counts from then, a later one (an
            # overflow connection) from its start; one that ends loses its last interval.
            start = self._last_cpu.get(pid, used if not self._sampled else 0.0)
            self.backend_cpu_seconds += used - start
            self._last_cpu[pid] = used
        self._sampled = True
        return self.backend_cpu_seconds

    async def sample(self, stop: asyncio.Event) -> None:
        """Look every 50 ms, so that short-lived backends are counted too."""
        while not stop.is_set():
            await self.backend_cpu()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)


def _backends() -> list[int]:
    """Pids of the Postgres backends connected to the benchmark database, by process title
    ("postgres: 15/main: postgres herald_bench_costs 127.0.0.1(5432) idle")."""
    pids = []
    marker = f" {_DATABASE} ".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if title.startswith(b"postgres:") and marker in title:
            pids.append(int(entry.name))
    return pids


def probe_counts(path: Path) -> dict[str, float]:
    time.sleep(0.3)  # the probe writes every 100 ms
    return {f"sql.{k}": float(v) for k, v in json.loads(path.read_text()).items()}


async def snapshot(herald: HeraldServe, pg: Postgres, rds: PrivateRedis, probe: Path) -> Any:
    values: dict[str, float] = {"herald_cpu_seconds": herald.cpu(), "time": time.monotonic()}
    values |= await pg.counters()
    values |= {f"redis.{k}": v for k, v in rds.counters().items()}
    values |= probe_counts(probe)
    return values


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0.0) for k in after if after[k] != before.get(k, 0.0)}


async def submit(url: str, key: str, count: int, *, batch: int, prefix: str) -> None:
    items = payloads(count, prefix)
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as c:
        if batch == 1:
            queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            for item in items:
                queue.put_nowait(item)

            async def worker() -> None:
                while not queue.empty():
                    response = await c.post("/v1/notifications", json=queue.get_nowait())
                    response.raise_for_status()

            await asyncio.gather(*(worker() for _ in range(16)))
        else:
            chunks = [items[i : i + batch] for i in range(0, count, batch)]
            semaphore = asyncio.Semaphore(4)

            async def post(chunk: list[dict[str, Any]]) -> None:
                async with semaphore:
                    response = await c.post(
                        "/v1/notifications/batch", json={"notifications": chunk}
                    )
                    response.raise_for_status()

            await asyncio.gather(*(post(chunk) for chunk in chunks))


async def wait_sent(pg: Postgres, total: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while True:
        (row,) = await pg._fetch("SELECT count(*) AS n FROM notifications WHERE status = 'sent'")
        if row["n"] >= total:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{row['n']} of {total} sent after {timeout} s")
        await asyncio.sleep(0.2)


def per_notification(
    load: dict[str, float], idle: dict[str, float], count: int
) -> dict[str, float]:
    """The load phase's counters less the background work over its duration, per notification."""
    seconds = load["time"]
    result: dict[str, float] = {}
    for name, value in load.items():
        if name in ("time", "own_statements"):
            continue
        background = idle.get(name, 0.0) / idle["time"] * seconds
        if name == "db.xact_commit":  # this script's own statements are transactions too
            value -= load.get("own_statements", 0.0)
            background -= idle.get("own_statements", 0.0) / idle["time"] * seconds
        result[name] = round((value - background) / count, 6)
    return result


async def run(count: int, idle_seconds: float, settings: dict[str, str]) -> dict[str, Any]:
    rds = PrivateRedis()
    probe = Path(tempfile.mkdtemp(prefix="herald-costs-")) / "probe.json"
    key = await prepare_database()
    herald = HeraldServe(
        "costs",
        **{
            "DATABASE_URL": DATABASE_URL,  # a --setting may point Herald at a pooler instead
            "REDIS_URL": rds.url,
            "JOB_MODULES": "bench.cost_probe",
            "BENCH_COST_PROBE_FILE": str(probe),
            **settings,
        },
    )
    conn = await asyncpg.connect(_DSN)
    pg = Postgres(conn)
    await pg.setup()
    phases: dict[str, Any] = {}
    try:
        await herald.start()
        await submit(herald.url, key, 200, batch=1, prefix="warm")
        await wait_sent(pg, 200)
        sent = 200
        await asyncio.sleep(3)  # the warm-up's statistics reach pg_stat_database
        before = await snapshot(herald, pg, rds, probe)
        await asyncio.sleep(idle_seconds)
        idle = delta(before, await snapshot(herald, pg, rds, probe))
        phases["idle_per_second"] = {
            k: round(v / idle["time"], 3) for k, v in idle.items() if k != "time"
        }
        for name, batch in (("single", 1), ("batch", 100)):
            before = await snapshot(herald, pg, rds, probe)
            started = time.monotonic()
            stop = asyncio.Event()
            sampler = asyncio.create_task(pg.sample(stop))
            await submit(herald.url, key, count, batch=batch, prefix=name)
            sent += count
            await wait_sent(pg, sent)
            elapsed = time.monotonic() - started
            stop.set()
            await sampler
            load = delta(before, await snapshot(herald, pg, rds, probe))
            phases[name] = {
                "notifications": count,
                "seconds": round(elapsed, 2),
                "throughput_per_second": round(count / elapsed, 1),
                "per_notification": per_notification(load, idle, count),
            }
    finally:
        await herald.stop()
        await conn.close()
        rds.stop()
    return phases


def _commit() -> dict[str, str]:
    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return result.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty_src": str(bool(git("status", "--short", "src"))),
    }


def render(results: dict[str, Any]) -> str:
    """The table docs/scaling.md quotes."""
    rows = [
        ("Herald CPU (ms)", "herald_cpu_seconds", 1000),
        ("Postgres backend CPU (ms)", "backend_cpu_seconds", 1000),
        ("Redis CPU (ms)", "redis.cpu_seconds", 1000),
        ("SQL statements", "sql.statements", 1),
        *(
            (f"  {kind}", f"sql.statements.{kind}", 1)
            for kind in ("SELECT", "INSERT", "UPDATE", "WITH", "DELETE")
        ),
        ("  executemany calls", "sql.executemany", 1),
        ("Postgres transactions", "db.xact_commit", 1),
        ("rows inserted", "db.tup_inserted", 1),
        ("rows updated", "db.tup_updated", 1),
        ("Redis commands", "redis.commands", 1),
        ("Redis bytes in", "redis.net_in_bytes", 1),
        ("Redis bytes out", "redis.net_out_bytes", 1),
    ]
    single, batch = results["phases"]["single"], results["phases"]["batch"]
    lines = [
        f"commit {results['source']['commit'][:10]}, {results['phases']['single']['notifications']}"
        " notifications per phase",
        "",
        "| per notification | single POSTs | batches of 100 |",
        "|---|---:|---:|",
    ]
    for label, name, scale in rows:
        a = single["per_notification"].get(name, 0.0) * scale
        b = batch["per_notification"].get(name, 0.0) * scale
        lines.append(f"| {label} | {a:.2f} | {b:.2f} |")
    lines.append(
        f"| throughput here (per s) | {single['throughput_per_second']} |"
        f" {batch['throughput_per_second']} |"
    )
    commands = Counter(
        {
            k.removeprefix("redis.command."): v
            for k, v in single["per_notification"].items()
            if k.startswith("redis.command.")
        }
    )
    top = ", ".join(f"{name} {value:.2f}" for name, value in commands.most_common(8))
    lines += ["", f"Redis commands per notification (single): {top}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-n", type=int, default=3000, help="notifications per load phase")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle measurement")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "costs.json")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for herald serve, e.g. DATABASE_POOL_MODE=transaction (repeatable)",
    )
    args = parser.parse_args()
    settings = dict(item.split("=", 1) for item in args.setting)
    phases = asyncio.run(run(args.n, args.idle, settings))
    results = {
        "source": _commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "load": os.getloadavg(),
            "python": platform.python_version(),
        },
        "database": DATABASE_URL,
        "settings": settings,
        "phases": phases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(render(results))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
