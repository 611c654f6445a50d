"""`python -m bench [--quick] [--tiny] [--only NAME] [--out DIR]`: run the benchmarks.

Prints a table per benchmark, writes `latest.json` and a dated copy (`YYYY-MM-DD-MODE.json`),
`latest.md` (the same tables in Markdown, for the README) and one PNG per benchmark to the
output directory (default `bench/results`). Exits 1 if any run failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.core import Mode, benchmarks, flush_redis, run_benchmark
from bench.env import REDIS_URL, ROOT, check_loopback
from bench.report import markdown, plot, print_tables


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller sizes, 2 runs per variant: the whole suite in several minutes",
    )
    parser.add_argument(
        "--tiny", action="store_true", help="tiny sizes, 1 run: checks the machinery (CI)"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only this benchmark (repeat or comma-separate for several)",
    )
    parser.add_argument("--runs", type=int, help="runs per variant (overrides the mode's)")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results", help="results directory"
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--list", action="store_true", help="list benchmarks and variants")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="run nothing: print the tables of a results file and redo its .md and plots in --out",
    )
    return parser.parse_args(argv)


def _machine() -> dict[str, Any]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        info: dict[str, Any] = client.info("server")  # type: ignore[assignment]
        redis_version = info["redis_version"]
    finally:
        client.close()
    return {
        "cpus": os.cpu_count(),
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "redis_server": redis_version,
        "event_loop": f"uvloop {version('uvloop')}",
        "cpu_probe_ms": _cpu_probe_ms(),
    }


def _cpu_probe_ms() -> float:
    """The best of five timings of one fixed pure-Python loop, in ms: how fast this machine's
    CPU was for this run. The same shared machine has measured up to 2x apart on different
    days; absolute figures of two runs compare only with this figure beside them."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        total = 0
        for n in range(1_000_000):
            total += n
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def _source() -> dict[str, Any]:
    """The commit measured, and the files under src/ that differ from it (work in progress).

    `BENCH_GIT_COMMIT` names the commit when the suite runs from an exported tree (no .git).
    """

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = os.environ.get("BENCH_GIT_COMMIT") or git("rev-parse", "HEAD") or None
    changes = git("status", "--porcelain", "--", "src").splitlines()
    return {"commit": commit, "src_changes": [line.strip() for line in changes]}


def _versions() -> dict[str, str]:
    return {name: version(name) for name in ("herald", "arq", "saq", "redis", "uvicorn")}


def _write_views(results: dict[str, Any], out: Path, *, plots: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.md").write_text(markdown(results))
    if plots:
        for name, result in results["benchmarks"].items():
            plot(name, result, out / f"{name}.png")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    registry = benchmarks()
    # Wide enough for the tables when the output is a file or a pipe (rich's default is 80).
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    if args.list:
        for name, benchmark in registry.items():
            console.print(f"[bold]{name}[/]: {benchmark.title} (baseline {benchmark.baseline})")
            for variant in benchmark.variants:
                console.print(f"  {variant.key}: {variant.label}")
        return 0
    if args.render:
        rendered: dict[str, Any] = json.loads(args.render.read_text())
        print_tables(rendered, console)
        _write_views(rendered, args.out, plots=not args.no_plots)
        return 0
    check_loopback()
    mode: Mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    names = [n.strip() for item in args.only or [] for n in item.split(",") if n.strip()]
    unknown = sorted(set(names) - set(registry))
    if unknown:
        console.print(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(registry)}")
        return 2
    selected = {n: b for n, b in registry.items() if not names or n in names}

    started = dt.datetime.now(dt.UTC)
    results: dict[str, Any] = {
        "schema": 1,
        "mode": mode,
        "started_at": started.isoformat(timespec="seconds"),
        "machine": _machine(),
        "source": _source(),
        "versions": _versions(),
        "redis_url": REDIS_URL,
        "benchmarks": {},
    }
    clock = time.monotonic()
    for name, benchmark in selected.items():
        console.rule(f"{name} ({mode})")
        results["benchmarks"][name] = run_benchmark(
            benchmark, mode, runs=args.runs, progress=lambda line: console.print(line)
        )
    flush_redis()
    finished = dt.datetime.now(dt.UTC)
    results["finished_at"] = finished.isoformat(timespec="seconds")
    results["seconds"] = round(time.monotonic() - clock, 1)

    print_tables(results, console)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2) + "\n"
    (out / "latest.json").write_text(text)
    (out / f"{finished:%Y-%m-%d}-{mode}.json").write_text(text)
    _write_views(results, out, plots=not args.no_plots)
    console.print(f"results in {out} ({results['seconds']} s)")
    failed = [
        f"{name}/{key}"
        for name, result in results["benchmarks"].items()
        for key, variant in result["variants"].items()
        if variant["errors"]
    ]
    if failed:
        console.print(f"[red]failed runs: {', '.join(failed)}[/]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
