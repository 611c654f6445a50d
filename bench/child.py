"""One run of one variant, in its own process: `python -m bench.child NAME VARIANT PARAMS OUT`.

Runs the benchmark's `child()` under uvloop (as `herald serve` does) and writes its result as
JSON to OUT. With `BENCH_PROFILE_DIR` set, the run is profiled with cProfile and the profile
is written there as `NAME-VARIANT-PID.prof` (read it with `python -m pstats` or snakeviz).
"""

from __future__ import annotations

import cProfile
import json
import os
import sys
from pathlib import Path

import uvloop

from bench.core import benchmarks


def main(argv: list[str]) -> None:
    name, variant_key, params_json, out = argv
    benchmark = benchmarks()[name]
    variant = benchmark.variant(variant_key)
    params = json.loads(params_json)
    profile_dir = os.environ.get("BENCH_PROFILE_DIR")
    profiler = cProfile.Profile() if profile_dir else None
    if profiler is not None:
        profiler.enable()
    result = uvloop.run(benchmark.child(variant, params))
    if profiler is not None and profile_dir:
        profiler.disable()
        path = Path(profile_dir) / f"{name}-{variant_key}-{os.getpid()}.prof"
        path.parent.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(path)
    Path(out).write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
