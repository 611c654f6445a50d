"""Where the benchmarks run: the local Redis and Postgres, loopback only.

`BENCH_REDIS_URL` (default Redis database 10) is flushed before every run, so it must not be
a database anyone else uses. `BENCH_DATABASE_URL` names the Postgres database the later
benchmarks (end-to-end through the API) will use; pick-up and throughput never connect to it.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/herald_bench"
)
# Every system runs with the same number of jobs at once (Herald's WORKER_CONCURRENCY default,
# arq's max_jobs default and SAQ's concurrency default are all 10).
CONCURRENCY = 10
# The Herald queue, arq queue and SAQ queue the benchmarks use.
QUEUE = "bench"

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def check_loopback() -> None:
    """Refuse to run against anything but this machine: the benchmarks flush their Redis DB."""
    for name, url in (("BENCH_REDIS_URL", REDIS_URL), ("BENCH_DATABASE_URL", DATABASE_URL)):
        host = urlsplit(url).hostname or ""
        if host not in _LOOPBACK:
            raise SystemExit(f"{name} must point at loopback (127.0.0.1), got host {host!r}")


def child_env(**extra: str) -> dict[str, str]:
    """Environment of a benchmark subprocess: this checkout importable, the same Redis."""
    env = {**os.environ, "BENCH_REDIS_URL": REDIS_URL, "BENCH_DATABASE_URL": DATABASE_URL}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def python() -> str:
    return sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
