"""The benchmark framework: a registry of benchmarks, each made of variants run side by side.

A benchmark is one module under `bench/benchmarks/` that defines a `Benchmark` subclass and
decorates it with `@register`. It declares its metrics, its variants (the first of which need
not be the baseline: `baseline` names it), its sizes per mode and how one run of one variant
is measured (`child`, which runs in a fresh subprocess under uvloop, see `bench.child`).

The runner does `runs` rounds; each round runs every variant once, in a rotated order, each
in a new process against a flushed Redis database. A figure is the median of the rounds, with
their min and max, and its ratio to the baseline's median: all variants ran in the same
invocation on the same machine, so the ratio is meaningful even when the machine is noisy.
"""

from __future__ import annotations

import importlib
import json
import math
import pkgutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from bench.env import REDIS_URL, ROOT, child_env, python

Mode = Literal["full", "quick", "tiny"]


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    better: Literal["lower", "higher"]
    log_scale: bool = False


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    system: str
    options: dict[str, Any] = field(default_factory=dict)
    # Anything else the benchmark needs to know about the variant (e.g. where it enqueues).
    extra: dict[str, Any] = field(default_factory=dict)
    # The metrics this variant reports; None means all of the benchmark's. The others are
    # "n/a" for it (e.g. a plain enqueue baseline has no "delivered" figure).
    metrics: tuple[str, ...] | None = None

    def reports(self, metric: str) -> bool:
        return self.metrics is None or metric in self.metrics


class Benchmark:
    """Subclass, fill in the class attributes, implement `params` and `child`, `@register`."""

    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    metrics: ClassVar[tuple[Metric, ...]]
    variants: ClassVar[tuple[Variant, ...]]
    baseline: ClassVar[str]
    # Runs per variant. Quick: two, so that the whole suite fits in two minutes (each run is a
    # fresh process, most of them `herald serve`); its medians are for spotting a regression,
    # the full run's five are the figures to quote. One tiny run: the smoke test checks the
    # machinery, in about a minute.
    runs: ClassVar[dict[str, int]] = {"full": 5, "quick": 2, "tiny": 1}

    def params(self, mode: Mode) -> dict[str, Any]:
        """The sizes of one run in this mode (recorded in the results)."""
        raise NotImplementedError

    def timeout(self, params: dict[str, Any]) -> float:
        """How long one run may take, start-up included, before it counts as failed."""
        return 120.0

    def setup(self, params: dict[str, Any]) -> None:
        """Once per invocation, before the first run, in the runner's process (no loop)."""

    async def child(self, variant: Variant, params: dict[str, Any]) -> dict[str, Any]:
        """Run once in a fresh process; return `{"metrics": {key: number}, "info": {...}}`."""
        raise NotImplementedError

    def variant(self, key: str) -> Variant:
        for variant in self.variants:
            if variant.key == key:
                return variant
        raise KeyError(f"{self.name} has no variant {key!r}")


_REGISTRY: dict[str, Benchmark] = {}


def register(cls: type[Benchmark]) -> type[Benchmark]:
    instance = cls()
    assert instance.baseline in {v.key for v in instance.variants}, cls
    keys = {m.key for m in instance.metrics}
    for variant in instance.variants:
        assert variant.metrics is None or set(variant.metrics) <= keys, (cls, variant.key)
    _REGISTRY[cls.name] = instance
    return cls


def benchmarks() -> dict[str, Benchmark]:
    """Every benchmark, in the order of the `bench.benchmarks` modules' `ORDER`, then by name."""
    import bench.benchmarks

    for module in pkgutil.iter_modules(bench.benchmarks.__path__, prefix="bench.benchmarks."):
        importlib.import_module(module.name)
    order = {name: i for i, name in enumerate(bench.benchmarks.ORDER)}
    return dict(sorted(_REGISTRY.items(), key=lambda item: (order.get(item[0], 99), item[0])))


# -- running ---------------------------------------------------------------------------------


def flush_redis() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


@dataclass
class RunOutcome:
    metrics: dict[str, float] | None
    info: dict[str, Any]
    error: str | None = None
    seconds: float = 0.0


def run_child(benchmark: Benchmark, variant: Variant, params: dict[str, Any]) -> RunOutcome:
    """One run of one variant in a new process, against a flushed Redis database."""
    flush_redis()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="herald-bench-") as tmp:
        out = Path(tmp) / "result.json"
        log = Path(tmp) / "output.txt"
        command = [
            python(),
            "-m",
            "bench.child",
            benchmark.name,
            variant.key,
            json.dumps(params),
            str(out),
        ]
        # The systems' logs (real per-job work) go to a file, kept only to explain a failure.
        with log.open("wb") as output:
            try:
                proc = subprocess.run(
                    command,
                    cwd=ROOT,
                    env=child_env(),
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    timeout=benchmark.timeout(params),
                    check=False,
                )
                code: int | str = proc.returncode
            except subprocess.TimeoutExpired:
                code = "timeout"
        seconds = time.monotonic() - started
        if code != 0 or not out.exists():
            tail = log.read_text(errors="replace")[-3000:]
            return RunOutcome(None, {}, f"exit {code}: {tail.strip()}", seconds)
        data = json.loads(out.read_text())
    flush_redis()
    expected = {m.key for m in benchmark.metrics if variant.reports(m.key)}
    if set(data["metrics"]) != expected:
        error = f"reported metrics {sorted(data['metrics'])}, expected {sorted(expected)}"
        return RunOutcome(None, data.get("info", {}), error, seconds)
    return RunOutcome(data["metrics"], data.get("info", {}), None, seconds)


def summarize(values: list[float], *, applicable: bool = True) -> dict[str, Any]:
    if not values:
        return {"median": None, "min": None, "max": None, "runs": [], "applicable": applicable}
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": values,
        "applicable": applicable,
    }


def run_benchmark(
    benchmark: Benchmark,
    mode: Mode,
    *,
    runs: int | None = None,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run every variant `runs` times, interleaved, and summarize them against the baseline."""
    params = benchmark.params(mode)
    rounds = runs or benchmark.runs[mode]
    benchmark.setup(params)
    outcomes: dict[str, list[RunOutcome]] = {v.key: [] for v in benchmark.variants}
    started = time.monotonic()
    variants = list(benchmark.variants)
    for round_ in range(rounds):
        # Rotate the order so no variant always runs first (or right after the same one).
        shift = round_ % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            outcome = run_child(benchmark, variant, params)
            outcomes[variant.key].append(outcome)
            shown = (
                ", ".join(f"{k}={v:.4g}" for k, v in (outcome.metrics or {}).items())
                or f"FAILED {outcome.error}"
            )
            progress(
                f"{benchmark.name} round {round_ + 1}/{rounds} {variant.key}: {shown} "
                f"({outcome.seconds:.1f} s)"
            )

    result_variants: dict[str, Any] = {}
    for variant in benchmark.variants:
        done = [o for o in outcomes[variant.key] if o.metrics is not None]
        result_variants[variant.key] = {
            "label": variant.label,
            "system": variant.system,
            "options": variant.options,
            "metrics": {
                m.key: summarize(
                    [o.metrics[m.key] for o in done if o.metrics is not None]
                    if variant.reports(m.key)
                    else [],
                    applicable=variant.reports(m.key),
                )
                for m in benchmark.metrics
            },
            "info": [o.info for o in done],
            "errors": [o.error for o in outcomes[variant.key] if o.error],
        }
    base = result_variants[benchmark.baseline]["metrics"]
    for entry in result_variants.values():
        for key, summary in entry["metrics"].items():
            ref = base[key]["median"]
            value = summary["median"]
            ok = value is not None and ref is not None and ref != 0 and math.isfinite(ref)
            summary["ratio"] = value / ref if ok else None
    return {
        "title": benchmark.title,
        "description": benchmark.description,
        "baseline": benchmark.baseline,
        "params": params,
        "runs": rounds,
        "seconds": round(time.monotonic() - started, 1),
        "metrics": {
            m.key: {"label": m.label, "unit": m.unit, "better": m.better, "log_scale": m.log_scale}
            for m in benchmark.metrics
        },
        "variants": result_variants,
    }
