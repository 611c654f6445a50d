"""The benchmark suite runs end to end and writes well-formed results (no timing assertions).

Runs `python -m bench --quick --tiny` in a subprocess against the test Redis database (it
flushes it between runs, as it would its own database 10) and the test Postgres database (the
benchmarks that go through the API empty its tables and run `herald serve` against it).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bench.core import benchmarks

from tests.conftest import DATABASE_URL, REDIS_URL
from tests.support.process import ROOT


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_quick_tiny_run_writes_wellformed_results(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "BENCH_REDIS_URL": REDIS_URL,
        "BENCH_DATABASE_URL": DATABASE_URL,
        "BENCH_DASHBOARD_DATABASE_URL": DATABASE_URL,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--tiny", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=360,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    results = json.loads((tmp_path / "latest.json").read_text())
    dated = list(tmp_path.glob("*-tiny.json"))
    assert len(dated) == 1
    assert json.loads(dated[0].read_text()) == results
    assert (tmp_path / "latest.md").read_text().strip()
    assert results["mode"] == "tiny"

    registry = benchmarks()
    assert set(results["benchmarks"]) == set(registry)
    for name, benchmark in registry.items():
        result = results["benchmarks"][name]
        assert (tmp_path / f"{name}.png").stat().st_size > 0
        assert result["baseline"] == benchmark.baseline
        assert set(result["metrics"]) == {m.key for m in benchmark.metrics}
        assert list(result["variants"]) == [v.key for v in benchmark.variants]
        baseline = result["variants"][benchmark.baseline]
        for key, variant in result["variants"].items():
            assert variant["errors"] == [], (name, key)
            assert len(variant["info"]) == result["runs"], (name, key)
            for metric in result["metrics"]:
                summary = variant["metrics"][metric]
                if not benchmark.variant(key).reports(metric):
                    # Not measured for this variant (e.g. "delivered" for a plain enqueue).
                    assert summary["applicable"] is False, (name, key, metric)
                    assert summary["runs"] == []
                    assert summary["median"] is None
                    assert summary["ratio"] is None
                    continue
                assert summary["applicable"] is True, (name, key, metric)
                assert len(summary["runs"]) == result["runs"], (name, key, metric)
                for field in ("median", "min", "max"):
                    assert _number(summary[field]), (name, key, metric, field, summary)
                assert summary["min"] <= summary["median"] <= summary["max"]
                if baseline["metrics"][metric]["applicable"]:
                    assert _number(summary["ratio"]), (name, key, metric, summary)
                else:
                    assert summary["ratio"] is None, (name, key, metric, summary)
                if key == result["baseline"]:
                    assert summary["ratio"] == pytest.approx(1.0)
