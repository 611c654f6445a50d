"""The Prometheus and Grafana configuration under deploy/.

promtool accepts the scrape configuration and the alert rules, and the rules' unit tests pass;
the Kubernetes relabelling keeps the right pods and names their jobs; and every metric and
label the alerts and the dashboard use is one Herald really exports (herald.metrics).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

import herald.metrics

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
KUBERNETES_CONFIG = PROMETHEUS_DIR / "prometheus-kubernetes.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "herald.json"

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (Debian package `prometheus`; .ci/run installs it)",
)

# Labels Prometheus attaches to every series of a target (the Kubernetes config adds the last
# two), and the keys Herald's lifespan puts in its two Info metrics (herald.app).
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod"})
INFO_LABELS = {"herald_role": {"role", "api", "workers"}, "herald_build": {"version"}}

EXPECTED_ALERTS = {
    "HeraldDown",
    "HeraldTargetsMissing",
    "HeraldNotReady",
    "HeraldWorkerLoopRestarting",
    "HeraldWorkerLoopDown",
    "HeraldQueueBacklogGrowing",
    "HeraldQueueOldestJobAge",
    "HeraldDeliveryFailureRatioHigh",
    "HeraldReconcilerRecovering",
    "HeraldHTTP5xx",
}


def promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


# -- what Herald exports -------------------------------------------------------------------------

SAMPLE_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "info": ("_info",),
}


def exported_families() -> dict[str, str]:
    """Family name → type, for every herald_* collector registered with prometheus_client."""
    return {
        family.name: family.type
        for family in REGISTRY.collect()
        if family.name.startswith("herald_")
    }


def exported_series_names() -> dict[str, str]:
    """Every sample name Herald exposes (herald_notifications_total, ..._bucket) → family."""
    names: dict[str, str] = {}
    for family, kind in exported_families().items():
        for suffix in SAMPLE_SUFFIXES[kind]:
            names[family + suffix] = family
    return names


def family_labels() -> dict[str, set[str]]:
    labels = {
        collector._name: set(collector._labelnames)
        for collector in vars(herald.metrics).values()
        if isinstance(collector, MetricWrapperBase)
    }
    for family, keys in INFO_LABELS.items():
        labels[family] |= keys
    return labels


def test_exported_families_are_the_instruments_of_herald_metrics() -> None:
    # The label check below reads herald.metrics' collectors; make sure they are the registry's.
    assert set(family_labels()) == set(exported_families())


# -- the expressions in alerts.yml and herald.json -----------------------------------------------

METRIC_NAME = re.compile(r"\bherald_[a-z_]+")
QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
SELECTOR = re.compile(r"\{([^{}]*)\}")
MATCHER = re.compile(r"^\s*([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
LABEL_VALUES = re.compile(r"^label_values\((.*),\s*(\w+)\)$")
LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_panels() -> Iterator[dict[str, Any]]:
    for panel in dashboard()["panels"]:
        yield panel
        yield from panel.get("panels", [])  # panels inside a collapsed row


def dashboard_expressions() -> Iterator[tuple[str, str, str]]:
    """(where, expr, legend) for every query of the dashboard, variables included."""
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            where = f"panel {panel['title']!r} target {target.get('refId')}"
            yield where, target.get("expr", ""), target.get("legendFormat", "")
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            yield f"variable {variable['name']!r}", text, ""


def all_expressions() -> list[tuple[str, str, str]]:
    rules = [(f"alert {rule['alert']}", rule["expr"], "") for rule in alert_rules()]
    return rules + list(dashboard_expressions())


def labels_used(expr: str) -> set[str]:
    """Label names an expression matches on, groups by or reads with label_values()."""
    bare = QUOTED.sub('""', expr.strip())
    used: set[str] = set()
    for selector in SELECTOR.findall(bare):
        for matcher in selector.split(","):
            if match := MATCHER.match(matcher):
                used.add(match.group(1))
    for grouping in GROUPING.findall(bare):
        used.update(name.strip() for name in grouping.split(",") if name.strip())
    if match := LABEL_VALUES.match(bare):
        used.add(match.group(2))
    return used


def test_the_expression_parsers_find_what_they_should() -> None:
    expr = (
        "histogram_quantile(0.5, sum by (queue, le) (rate("
        'herald_job_duration_seconds_bucket{job=~"a,b{c}", queue!="x"}[5m])))'
        " / on (job) group_left (version) herald_build_info"
    )
    assert METRIC_NAME.findall(expr) == ["herald_job_duration_seconds_bucket", "herald_build_info"]
    assert labels_used(expr) == {"queue", "le", "job", "version"}
    assert labels_used('label_values(herald_queue_depth{job=~"$job"}, queue)') == {"job", "queue"}


def test_alerts_and_dashboard_use_only_metrics_herald_exports() -> None:
    series = exported_series_names()
    unknown: list[str] = []
    used: set[str] = set()
    for where, expr, _ in all_expressions():
        for name in METRIC_NAME.findall(expr):
            used.add(name)
            if name not in series:
                unknown.append(f"{where}: {name}")
    assert not unknown, "metrics that herald.metrics does not export:\n" + "\n".join(unknown)
    # Not vacuous: between them they cover nearly every family Herald has.
    covered = {series[name] for name in used}
    assert covered == set(exported_families()), set(exported_families()) - covered


def test_alerts_and_dashboard_use_only_labels_those_metrics_have() -> None:
    labels = family_labels()
    series = exported_series_names()
    wrong: list[str] = []
    for where, expr, legend in all_expressions():
        families = {series[name] for name in METRIC_NAME.findall(expr) if name in series}
        allowed = set(TARGET_LABELS).union(*(labels[family] for family in families))
        if any(name.endswith("_bucket") for name in METRIC_NAME.findall(expr)):
            allowed.add("le")
        used = labels_used(expr) | set(LEGEND_LABEL.findall(legend))
        if used - allowed:
            wrong.append(f"{where}: {sorted(used - allowed)} not in {sorted(allowed)}")
    assert not wrong, "labels the metrics do not have:\n" + "\n".join(wrong)


# -- Prometheus ----------------------------------------------------------------------------------


@needs_promtool
def test_prometheus_config_is_valid() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, output(result)
    assert "1 rule files found" in result.stdout + result.stderr, output(result)


@needs_promtool
def test_alert_rules_are_valid() -> None:
    result = promtool("check", "rules", "--lint=all", "--lint-fatal", ALERTS.name)
    assert result.returncode == 0, output(result)


@needs_promtool
def test_alert_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", ALERTS_TEST.name)
    assert result.returncode == 0, output(result)


def test_every_alert_is_labelled_annotated_and_tested_both_ways() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), names
    assert set(names) >= EXPECTED_ALERTS, EXPECTED_ALERTS - set(names)
    for rule in rules:
        assert "for" in rule, rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        for annotation in ("summary", "description", "runbook", "runbook_url"):
            assert rule["annotations"].get(annotation, "").strip(), (rule["alert"], annotation)

    fires: set[str] = set()
    stays_quiet: set[str] = set()
    for case in yaml.safe_load(ALERTS_TEST.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else stays_quiet).add(check["alertname"])
    assert set(names) - fires == set(), "alerts never tested firing"
    assert set(names) - stays_quiet == set(), "alerts never tested staying quiet"


# A Herald pod as Kubernetes pod discovery describes it, one target per container port.
def pod(address: str = "10.0.0.5:8000", **meta: str) -> dict[str, Any]:
    labels = {
        "__meta_kubernetes_namespace": "herald",
        "__meta_kubernetes_pod_name": "herald-7d9c-x2",
        "__meta_kubernetes_pod_phase": "Running",
        "__meta_kubernetes_pod_container_name": "herald",
        "__meta_kubernetes_pod_container_init": "false",
        "__meta_kubernetes_pod_label_app_kubernetes_io_name": "herald",
        "__meta_kubernetes_pod_label_app_kubernetes_io_component": "server",
        "__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true",
        "__meta_kubernetes_pod_annotation_prometheus_io_port": "8000",
        "__meta_kubernetes_pod_annotation_prometheus_io_path": "/metrics",
    }
    for key, value in meta.items():
        labels[f"__meta_kubernetes_{key}"] = value
    return {"targets": [address], "labels": labels}


@needs_promtool
def test_kubernetes_config_keeps_herald_pods_and_names_their_jobs(tmp_path: Path) -> None:
    """Debian's Prometheus has no Kubernetes discovery, so the pods come from a file instead,
    labelled as Kubernetes discovery would: promtool then applies the real relabelling."""
    pods = {
        "server": pod(),
        "worker": pod(
            "10.0.0.6:8000",
            pod_name="herald-worker-5f-k1",
            pod_label_app_kubernetes_io_component="worker",
        ),
        "api": pod("10.0.0.7:8000", pod_label_app_kubernetes_io_component="api"),
        "custom port and path": pod(
            "10.0.0.8:8080",
            pod_annotation_prometheus_io_port="9000",
            pod_annotation_prometheus_io_path="/internal/metrics",
        ),
        "not annotated": pod("10.0.1.1:8000", pod_annotation_prometheus_io_scrape="false"),
        "sidecar": pod("10.0.1.2:15090", pod_container_name="istio-proxy"),
        "pending": pod("10.0.1.3:8000", pod_phase="Pending"),
        "another app": pod("10.0.1.4:8000", pod_label_app_kubernetes_io_name="billing"),
    }
    pods_file = tmp_path / "pods.json"
    pods_file.write_text(json.dumps(list(pods.values())))

    config = yaml.safe_load(KUBERNETES_CONFIG.read_text())
    config["rule_files"] = [str(ALERTS)]
    (job,) = config["scrape_configs"]
    assert [sd["role"] for sd in job.pop("kubernetes_sd_configs")] == ["pod"]
    job["file_sd_configs"] = [{"files": [str(pods_file)]}]
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))

    checked = promtool("check", "config", str(config_file))
    assert checked.returncode == 0, output(checked)
    # promtool waits the whole timeout for discovery; reading a file takes milliseconds.
    result = promtool(
        "check", "service-discovery", "--timeout=3s", str(config_file), job["job_name"]
    )
    assert result.returncode == 0, output(result)
    kept = {
        target["labels"]["instance"]: target["labels"]
        for target in json.loads(result.stdout)
        if target["labels"]
    }
    assert {
        instance: (labels["job"], labels["__metrics_path__"], labels["pod"], labels["namespace"])
        for instance, labels in kept.items()
    } == {
        "10.0.0.5:8000": ("herald", "/metrics", "herald-7d9c-x2", "herald"),
        "10.0.0.6:8000": ("herald-worker", "/metrics", "herald-worker-5f-k1", "herald"),
        "10.0.0.7:8000": ("herald-api", "/metrics", "herald-7d9c-x2", "herald"),
        "10.0.0.8:9000": ("herald", "/internal/metrics", "herald-7d9c-x2", "herald"),
    }
    # Where promtool has Kubernetes discovery (upstream builds), check the file as shipped.
    as_shipped = promtool("check", "config", KUBERNETES_CONFIG.name)
    if "kubernetes_sd_configs not found" not in as_shipped.stdout + as_shipped.stderr:
        assert as_shipped.returncode == 0, output(as_shipped)


# -- Grafana -------------------------------------------------------------------------------------

# Panel title → what its queries must contain.
REQUIRED_PANELS: dict[str, list[str]] = {
    "Notifications/s by channel and outcome": [
        "sum by (channel, outcome) (rate(herald_notifications_total"
    ],
    "Provider latency p50 / p95 / p99": [
        f"histogram_quantile({q}, sum by (channel, provider, le) "
        "(rate(herald_provider_latency_seconds_bucket"
        for q in ("0.5", "0.95", "0.99")
    ],
    "Job pick-up latency p50 / p99": [
        f"histogram_quantile({q}, sum by (queue, le) (rate(herald_job_pickup_latency_seconds_bucket"
        for q in ("0.5", "0.99")
    ],
    "Job duration p50 / p95 / p99": [
        f"histogram_quantile({q}, sum by (queue, le) (rate(herald_job_duration_seconds_bucket"
        for q in ("0.5", "0.95", "0.99")
    ],
    "Queue depth, deferred and in progress": [
        "max by (queue) (herald_queue_depth{",
        "max by (queue) (herald_queue_deferred{",
        "max by (queue) (herald_queue_in_progress{",
    ],
    "Oldest due job age": ["max by (queue) (herald_queue_oldest_job_age_seconds{"],
    "Job failures, retries and cancellations/s": [
        "herald_jobs_failed_total",
        "herald_jobs_retried_total",
        "herald_jobs_cancelled_total",
    ],
    "Delivery failure ratio by channel": ['outcome="failed"'],
    "HTTP requests/s by route and status": [
        "sum by (route, status) (rate(herald_http_requests_total"
    ],
    "HTTP latency p50 / p99 by route": [
        f"histogram_quantile({q}, sum by (route, le) "
        "(rate(herald_http_request_duration_seconds_bucket"
        for q in ("0.5", "0.99")
    ],
    "Worker loop restarts": ["herald_worker_restarts_total"],
    "Worker loops up": ["herald_worker_loop_up"],
    "Reconciler: recovered notifications and runs": [
        "sum by (reason) (increase(herald_reconciler_recovered_total",
        "herald_reconciler_runs_total",
    ],
    "Rate-limit waits/s by channel": ["herald_rate_limit_waits_total"],
    "In-flight jobs": ["sum by (queue) (herald_jobs_in_flight{"],
}
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}


def test_dashboard_is_grafana_json_with_a_datasource_and_instance_variables() -> None:
    board = dashboard()
    assert board["schemaVersion"] >= 36
    assert board["uid"]
    assert board["title"]
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    for name in ("job", "instance"):
        assert variables[name]["type"] == "query", name
        assert variables[name]["datasource"] == DATASOURCE, name
        assert variables[name]["includeAll"], name

    panels = list(dashboard_panels())
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24, panel["title"]
        assert position["h"] > 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]
            # Every query honours the job and instance selection.
            assert 'job=~"$job", instance=~"$instance"' in target["expr"], panel["title"]


@pytest.mark.parametrize("title", sorted(REQUIRED_PANELS))
def test_dashboard_has_the_panel(title: str) -> None:
    panels = {panel["title"]: panel for panel in dashboard_panels()}
    assert title in panels, sorted(panels)
    exprs = " ".join(target["expr"] for target in panels[title]["targets"])
    for fragment in REQUIRED_PANELS[title]:
        assert fragment in exprs, (title, fragment)
