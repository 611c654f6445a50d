"""Start-up: `herald serve` with external servers vs embedded mode, warm and cold.

Each run starts one `herald serve` (as a user would: `AUTO_MIGRATE` on, the default) and
times, from the moment the process is spawned:
- ready: until `/health/ready` answers 200 (polled every 10 ms);
then sends SIGTERM and times
- stop: until the process has exited (for embedded mode, after its servers have stopped).

Variants:
- external (the baseline): `DATABASE_URL` / `REDIS_URL` set to the benchmark's Postgres and
  Redis, its database already migrated;
- embedded, warm: no URLs, a data folder made once per invocation (the cluster initialised
  and migrated), so each run starts the existing Postgres and Valkey;
- embedded, cold: no URLs and a new, empty data folder every run: initdb, the first start,
  the database created and migrated.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.core import Metric, Mode, Variant, register
from bench.env import ROOT, child_env, python
from bench.serve import HeraldServe, ThroughHerald

# The warm variant's data folder, shared by the runs of one invocation (made in `setup`).
WARM = Path(tempfile.gettempdir()) / f"herald-bench-startup-warm-{os.getuid()}"


def _new_folder(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)  # as root, the embedded Postgres runs as nobody, who must reach it
    return path


def _embedded_env(data: Path) -> dict[str, str]:
    return {"DATABASE_URL": "", "REDIS_URL": "", "HERALD_DATA_DIR": str(data)}


@register
class Startup(ThroughHerald):
    name = "startup"
    title = "Start-up of herald serve: external servers vs embedded (warm and cold)"
    description = __doc__ or ""
    metrics = (
        Metric("ready_s", "spawn to ready", "s", "lower"),
        Metric("stop_s", "SIGTERM to exit", "s", "lower"),
    )
    variants = (
        Variant("external", "Herald, external Postgres and Redis", "herald"),
        Variant("embedded-warm", "Herald embedded, warm (existing data)", "herald"),
        Variant("embedded-cold", "Herald embedded, cold (first initdb)", "herald"),
    )
    baseline = "external"

    def params(self, mode: Mode) -> dict[str, Any]:
        return {"poll_s": 0.01}

    def timeout(self, params: dict[str, Any]) -> float:
        return 120.0

    def setup(self, params: dict[str, Any]) -> None:
        super().setup(params)
        shutil.rmtree(WARM, ignore_errors=True)
        WARM.mkdir(mode=0o755)
        env = {k: v for k, v in child_env().items() if not k.startswith("BENCH_")}
        subprocess.run(
            [python(), "-m", "herald", "migrate"],
            cwd=ROOT,
            env={**env, **_embedded_env(WARM)},
            capture_output=True,
            check=True,
            timeout=120,
        )

    async def child(self, variant: Variant, params: dict[str, Any]) -> dict[str, Any]:
        cold: Path | None = None
        if variant.key == "external":
            settings: dict[str, str] = {}
        elif variant.key == "embedded-warm":
            settings = _embedded_env(WARM)
        else:
            cold = _new_folder("herald-bench-startup-cold-")
            settings = _embedded_env(cold / "data")
        server = HeraldServe(f"startup-{variant.key}", AUTO_MIGRATE="true", **settings)
        try:
            ready = await _time_start(server, params["poll_s"])
            stopped = await _time_stop(server)
        finally:
            await server.stop()
            if cold is not None:
                shutil.rmtree(cold, ignore_errors=True)
        return {"metrics": {"ready_s": ready, "stop_s": stopped}, "info": {}}


async def _time_start(server: HeraldServe, poll: float) -> float:
    started = time.monotonic()
    await server.spawn()
    deadline = started + 90
    async with httpx.AsyncClient(base_url=server.url, timeout=2) as client:
        while time.monotonic() < deadline:
            if server.proc.returncode is not None:
                raise RuntimeError(f"exited with {server.proc.returncode}: {server.logs()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/health/ready")).status_code == 200:
                    return time.monotonic() - started
            await asyncio.sleep(poll)
    raise TimeoutError(f"not ready after 90 s: {server.logs()}")


async def _time_stop(server: HeraldServe) -> float:
    assert server.proc is not None
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(server.proc.wait(), timeout=60)
    return time.monotonic() - started
