"""The real Prometheus server scraping a running `herald serve`.

Prometheus (Debian's `prometheus` binary) listens on a loopback port with a throw-away TSDB,
scrapes one `herald serve` every second and evaluates deploy/prometheus/alerts.yml. Its only
target is that loopback address: no Alertmanager, no remote write, no service discovery.
What is read back goes through Prometheus's HTTP API, as Grafana and an operator would.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from uuid import uuid4

import httpx
import pytest
import redis
import yaml
from redis.asyncio import Redis

from herald.queue import JobQueue, registry
from tests.conftest import REDIS_URL
from tests.observability.test_deploy_config import (
    ALERTS,
    alert_rules,
    all_expressions,
    dashboard_panels,
)
from tests.support.process import HeraldProcess, free_port

PROMETHEUS = shutil.which("prometheus")

pytestmark = [
    pytest.mark.process,
    pytest.mark.slow,
    pytest.mark.skipif(
        PROMETHEUS is None,
        reason="the prometheus server binary is not installed "
        "(Debian package `prometheus`; .ci/run installs it)",
    ),
]

T = TypeVar("T")


@dataclass
class PrometheusServer:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=5)
        body = response.json()
        assert body["status"] == "success", (path, params, body)
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", (expr, data)
        result: list[dict[str, Any]] = data["result"]
        return result

    def wait_until(self, what: str, check: Callable[[], T | None], timeout: float = 30) -> T:
        """Poll `check` until it returns something truthy; fail with the last value seen."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"prometheus exited with {self.proc.returncode}:\n{self.logs()}"
                )
            try:
                value = check()
            except (httpx.HTTPError, AssertionError) as exc:
                value, last = None, exc
            else:
                last = value
            if value:
                return value
            time.sleep(0.25)
        raise AssertionError(f"never saw {what} (last: {last!r})\nprometheus log:\n{self.logs()}")


@contextlib.contextmanager
def prometheus_scraping(herald: HeraldProcess, workdir: Path) -> Iterator[PrometheusServer]:
    """Run Prometheus scraping `herald` every second, with alerts.yml loaded; stop it after."""
    assert PROMETHEUS is not None
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {
                "job_name": "herald",
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [f"127.0.0.1:{herald.port}"]}],
            }
        ],
    }
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=info",
            ],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = PrometheusServer(f"http://127.0.0.1:{port}", proc, log_path)
    try:
        server.wait_until(
            "Prometheus ready", lambda: httpx.get(f"{server.url}/-/ready", timeout=2).is_success
        )
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def _enqueue(jobs: list[tuple[str, str]]) -> None:
    async with Redis.from_url(REDIS_URL) as client:
        queue = JobQueue(client, registry)
        for function, token in jobs:
            assert await queue.enqueue(function, token)


def run_test_jobs(sync_redis: redis.Redis, jobs: list[tuple[str, str]]) -> None:
    """Enqueue the test jobs into Redis and wait until `herald serve` has run them all."""
    asyncio.run(_enqueue(jobs))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if all(sync_redis.exists(f"test:ran:{token}") for _, token in jobs):
            return
        time.sleep(0.05)
    raise AssertionError("herald did not run the test jobs")


def by_label(result: list[dict[str, Any]], label: str) -> dict[str, float]:
    return {series["metric"].get(label, ""): float(series["value"][1]) for series in result}


def test_prometheus_scrapes_herald_and_sees_its_jobs(
    herald: Callable[..., HeraldProcess], sync_redis: redis.Redis, tmp_path: Path
) -> None:
    process = herald()
    jobs = [("test.record_a", uuid4().hex) for _ in range(3)]
    jobs += [("test.record_b", uuid4().hex) for _ in range(2)]
    run_test_jobs(sync_redis, jobs)
    # Probe readiness as a kubelet would: HeraldNotReady reads these requests' counter.
    for _ in range(3):
        assert process.get("/health/ready").status_code == 200

    with prometheus_scraping(process, tmp_path) as prometheus:

        def herald_target() -> dict[str, Any] | None:
            targets = prometheus.api("targets", state="active")["activeTargets"]
            assert len(targets) == 1, targets
            return targets[0] if targets[0]["health"] == "up" else None

        target = prometheus.wait_until("the herald target up", herald_target)
        assert target["scrapeUrl"] == f"{process.url}/metrics"
        assert target["labels"] == {"job": "herald", "instance": f"127.0.0.1:{process.port}"}
        assert by_label(prometheus.query('up{job="herald"}'), "job") == {"herald": 1.0}

        succeeded = prometheus.wait_until(
            "sum(herald_jobs_succeeded_total) > 0",
            lambda: prometheus.query("sum(herald_jobs_succeeded_total) > 0"),
        )
        assert float(succeeded[0]["value"][1]) == len(jobs)
        assert by_label(
            prometheus.query("sum by (queue) (herald_jobs_succeeded_total)"), "queue"
        ) == {"a": 3.0, "b": 2.0}
        assert by_label(
            prometheus.query(
                'sum by (queue) (herald_job_pickup_latency_seconds_count{job="herald"})'
            ),
            "queue",
        ) == {"a": 3.0, "b": 2.0}
        assert prometheus.query("sum(herald_jobs_failed_total) > 0") == []
        # The label values the alerts rely on are the ones Herald really emits.
        assert by_label(
            prometheus.query(
                'herald_http_requests_total{route="/health/ready", method="GET", status="200"}'
            ),
            "route",
        ) == {"/health/ready": 3.0}
        # Herald's own queues are there too; the test jobs' queues are the ones known here.
        loops = by_label(prometheus.query('herald_worker_loop_up{queue=~"a|b"}'), "queue")
        assert loops == {"a": 1.0, "b": 1.0}
        depth = by_label(prometheus.query('herald_queue_depth{queue=~"a|b"}'), "queue")
        assert depth == {"a": 0.0, "b": 0.0}
        (role,) = prometheus.query("herald_role_info")
        assert (role["metric"]["role"], role["metric"]["workers"]) == ("unified", "true"), role


GRAFANA_VARIABLE = re.compile(r"\$\{?(\w+)\}?")


def as_prometheus_query(expr: str) -> str:
    """A dashboard query as Grafana sends it with every variable at "All"."""
    expr = expr.replace("$__rate_interval", "15s").replace("$__interval", "5s")
    return GRAFANA_VARIABLE.sub(".*", expr)


def test_alert_rules_and_dashboard_queries_run_against_a_live_herald(
    herald: Callable[..., HeraldProcess], sync_redis: redis.Redis, tmp_path: Path
) -> None:
    process = herald()
    run_test_jobs(sync_redis, [("test.record_a", uuid4().hex), ("test.record_b", uuid4().hex)])
    process.get("/health/ready")

    with prometheus_scraping(process, tmp_path) as prometheus:
        prometheus.wait_until(
            "a few scrapes of herald",
            lambda: prometheus.query('count_over_time(up{job="herald"}[1m]) >= 5'),
        )

        # Every rule of alerts.yml was loaded and evaluates without error against real series.
        def rules_evaluated() -> list[dict[str, Any]] | None:
            groups = prometheus.api("rules")["groups"]
            rules = [rule for group in groups for rule in group["rules"]]
            return rules if rules and all(rule["health"] == "ok" for rule in rules) else None

        rules = prometheus.wait_until("every rule evaluated", rules_evaluated)
        assert sorted(rule["name"] for rule in rules) == sorted(
            rule["alert"] for rule in alert_rules()
        )
        assert [rule["lastError"] for rule in rules if rule.get("lastError")] == []

        # A healthy herald raises no alert, not even a pending one (HeraldTargetsMissing is
        # pending for the instant before the first scrape, so allow it to clear).
        prometheus.wait_until("no active alerts", lambda: not prometheus.api("alerts")["alerts"])

        # Every dashboard query parses and runs; those over always-present series return data.
        results = {}
        for where, expr, _ in all_expressions():
            if where.startswith("variable"):
                continue  # label_values() is Grafana's, not PromQL
            results[where] = prometheus.query(as_prometheus_query(expr))
        titles = {panel["title"] for panel in dashboard_panels()}
        for title in (
            "Targets up",
            "Processes: role and version",
            "Queue depth, deferred and in progress",
            "Oldest due job age",
            "HTTP requests/s by route and status",
            "Worker loops up",
        ):
            assert title in titles
            assert results[f"panel {title!r} target A"], (title, results)
        (process_row,) = results["panel 'Processes: role and version' target A"]
        assert process_row["metric"]["role"] == "unified", process_row
        assert process_row["metric"]["version"], process_row
