"""Counts the SQL statements of the `herald serve` that `bench/costs.py` measures.

Loaded into that process with `JOB_MODULES=bench.cost_probe` (it defines no job): a listener
on every SQLAlchemy engine counts each statement Herald sends by its first word (SELECT,
INSERT, UPDATE, ...), and executemany calls with their parameter sets; a thread writes the
counts as JSON to `BENCH_COST_PROBE_FILE` every 100 ms. Used where pg_stat_statements is not
loaded; the cost is a dict increment per statement.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

_counts: Counter[str] = Counter()
_lock = threading.Lock()


@event.listens_for(Engine, "before_cursor_execute")
def _count(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    word = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
    with _lock:
        _counts["statements"] += 1
        _counts[f"statements.{word}"] += 1
        if executemany:
            _counts["executemany"] += 1
            _counts["executemany_rows"] += len(parameters)


def _write_forever(path: Path) -> None:
    while True:
        with _lock:
            snapshot = dict(_counts)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(snapshot))
        temporary.replace(path)
        time.sleep(0.1)


_target = os.environ.get("BENCH_COST_PROBE_FILE")
if _target:
    threading.Thread(
        target=_write_forever, args=(Path(_target),), name="cost-probe", daemon=True
    ).start()
