"""Hostile JSON against both POST endpoints: Herald's CPU per KiB of body, beside valid bodies.

Issue 19: a body nested a few hundred levels deep used to answer 500 after seconds of CPU.
Herald now scans the raw body iteratively before decoding it (`herald.notifications.nesting`)
and answers 400 when a field nests deeper than 32 levels. This benchmark measures what hostile
bodies cost the server, beside valid bodies of the same sizes that are decoded, validated,
stored and answered 202 (the baseline).

Herald runs as `herald serve` in the API role only (`ENABLE_WORKERS=false`: accepted
notifications are stored and enqueued but not delivered, so only the handling of requests is
measured) against `herald_bench` and Redis database 10, both emptied before every run. This
process sends the bodies one at a time on one keep-alive connection: after a warm-up request
of each kind, `volume_kib` of body of each shape and size to each endpoint. A cell's figure is
the server process's user + system CPU time over those requests (its POSIX CPU clock: what
/proc/PID/stat counts, in nanoseconds instead of 10 ms clock ticks), over their KiB of body.

The metrics are the worst cell on each endpoint (`POST /v1/notifications` and
`POST /v1/notifications/batch`) and the median cell; every cell is in the run's `info`, and
`python -m bench.benchmarks.hostile_json [RESULTS.json]` prints them as a table, each with its
ratio to the valid body of the same size on the same endpoint.

Every response must have the status its shape expects; any other status, a 5xx above all,
fails the run. Two variants, so that `--tiny` starts only two servers: the valid bodies (the
baseline), and all the hostile shapes one after the other in one server. The shapes, each
built to the size asked, up to the 1 MiB body limit:

- valid: an email with about 3.5 KiB of flat `metadata` and a long text body; a batch of up
  to 1000 such items (about 1 KiB each) of the same total size. 202.
- bare: `[[[[...]]]]`, half opening and half closing brackets. 400.
- deep: `metadata: {"m": [[[[...]]]]}`; in the batch, the last of three items. 400.
- wide: 40 levels alternating objects and arrays, each with the same number of siblings
  (numbers, strings, small shallow containers) before the next level, so that the limit is
  passed only near the end of the body and the scan reads all of it. 400.
- strings: the same shape, with siblings that are strings full of brackets, escaped quotes and
  backslashes, which the scan must skip as strings. 400.
- at-limit: 32 levels (allowed), wide. Single: one large `metadata`, over its 4 KiB cap (422,
  after decoding); batch: up to 1000 items with 32-level `metadata` under 1 KiB. 202.
- unterminated: a `metadata` with more brackets than the limit but no deep nesting, then a
  string that never ends, made of escaped quotes. Malformed, 400. Until 6cbba6b the scan's
  string pattern failed at every quote only after reading to the end of the body, so its cost
  grew with the square of the body (32 KiB: about 4 s of CPU); it gets the same sizes as the
  other shapes so that such a regression shows at once.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import httpx

from bench.core import Metric, Mode, Variant, register
from bench.serve import HeraldServe, ThroughHerald, prepare_database, start_during

KIB = 1024
BODY_LIMIT = 1024 * KIB
SINGLE, BATCH = "/v1/notifications", "/v1/notifications/batch"
# Levels of containers a field may hold (herald.notifications.nesting.MAX_DEPTH).
MAX_DEPTH = 32
# Levels in the wide-and-deep bodies: past the limit, but not by much, so that the body's
# bytes go into width.
WIDE_LEVELS = 40


# The shapes: what each is called and what each endpoint must answer.
SHAPES: dict[str, tuple[str, tuple[int, int]]] = {
    "valid": ("valid bodies", (202, 202)),
    "bare": ("bare [[[[...]]]]", (400, 400)),
    "deep": ("deep in metadata / in a batch item", (400, 400)),
    "wide": ("wide and deep, 40 levels", (400, 400)),
    "strings": ("wide and deep, brackets and escapes in strings", (400, 400)),
    "at-limit": ("32 levels, wide (allowed nesting)", (422, 202)),
    "unterminated": ("unterminated string of escaped quotes", (400, 400)),
}


@register
class HostileJson(ThroughHerald):
    name = "hostile_json"
    title = "Hostile JSON at both POST endpoints: Herald CPU per KiB of body, beside valid bodies"
    description = __doc__ or ""
    metrics = (
        Metric("single_ms_per_kib", "single: worst body", "ms CPU/KiB", "lower", log_scale=True),
        Metric("batch_ms_per_kib", "batch: worst body", "ms CPU/KiB", "lower", log_scale=True),
        Metric("median_ms_per_kib", "median body", "ms CPU/KiB", "lower", log_scale=True),
    )
    variants = (
        Variant("valid", "valid bodies (202)", "herald", extra={"shapes": ["valid"]}),
        Variant(
            "hostile",
            "hostile bodies (400; allowed nesting 422 / 202)",
            "herald",
            extra={"shapes": [s for s in SHAPES if s != "valid"]},
        ),
    )
    baseline = "valid"

    def params(self, mode: Mode) -> dict[str, Any]:
        # volume_kib: KiB of body sent per shape, size and endpoint (at least one request).
        return {
            "full": {"sizes_kib": [16, 256, 1024], "volume_kib": 2048},
            "quick": {"sizes_kib": [16, 1024], "volume_kib": 1024},
            "tiny": {"sizes_kib": [16], "volume_kib": 32},
        }[mode]

    def timeout(self, params: dict[str, Any]) -> float:
        return 900.0

    async def child(self, variant: Variant, params: dict[str, Any]) -> dict[str, Any]:
        herald = HeraldServe("hostile", ENABLE_WORKERS="false")
        try:
            key = await start_during([herald], prepare_database())
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            async with httpx.AsyncClient(
                base_url=herald.url, headers=headers, timeout=600
            ) as client:
                # Warm-up: the first request of each kind pays for imports and caches.
                await _send(client, herald, SINGLE, _valid(SINGLE, 4 * KIB), 202)
                await _send(client, herald, BATCH, _valid(BATCH, 4 * KIB), 202)
                cells = []
                for shape in variant.extra["shapes"]:
                    cells += await _measure(client, herald, shape, params)
        finally:
            await herald.stop()

        def worst(endpoint: str) -> float:
            return max(c["ms_per_kib"] for c in cells if c["endpoint"] == endpoint)

        return {
            "metrics": {
                "single_ms_per_kib": worst("single"),
                "batch_ms_per_kib": worst("batch"),
                "median_ms_per_kib": statistics.median(c["ms_per_kib"] for c in cells),
            },
            "info": {"cells": cells},
        }


async def _measure(
    client: httpx.AsyncClient, herald: HeraldServe, shape: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every size of one shape to both endpoints: one cell of figures per endpoint and size."""
    _, statuses = SHAPES[shape]
    sizes, volume = params["sizes_kib"], params["volume_kib"]
    build = _BUILDERS[shape]
    cells = []
    for path, status in zip((SINGLE, BATCH), statuses, strict=True):
        await _send(client, herald, path, build(path, sizes[0] * KIB), status)  # warm-up
        for kib in sizes:
            body = build(path, kib * KIB)
            requests = max(1, volume // kib)
            cpu_before = _cpu(herald.pid)
            clock = time.perf_counter()
            for _ in range(requests):
                await _send(client, herald, path, body, status)
            wall = time.perf_counter() - clock
            cpu = _cpu(herald.pid) - cpu_before
            cells.append(
                {
                    "shape": shape,
                    "endpoint": "single" if path == SINGLE else "batch",
                    "kib": kib,
                    "bytes": len(body),
                    "requests": requests,
                    "status": status,
                    "cpu_ms_per_request": cpu * 1000 / requests,
                    "ms_per_kib": cpu * 1000 / (requests * len(body) / KIB),
                    "wall_ms_per_request": wall * 1000 / requests,
                }
            )
    return cells


def _cpu(pid: int) -> float:
    """User + system CPU seconds of process `pid`, read from its POSIX CPU clock.

    The same total as /proc/PID/stat's utime + stime (`bench.serve.cpu_seconds`), at
    nanosecond resolution instead of clock ticks (10 ms), so that small bodies are measured
    too. Linux encodes a process's CPU clock id as `(~pid << 3) | 2`
    (`clock_getcpuclockid(3)`); Python has no wrapper for it.
    """
    return time.clock_gettime((~pid << 3) | 2)


async def _send(
    client: httpx.AsyncClient, herald: HeraldServe, path: str, body: bytes, status: int
) -> None:
    response = await client.post(path, content=body)
    if response.status_code != status:
        raise RuntimeError(
            f"{path} with {len(body)} bytes ({body[:80]!r}...): {response.status_code}, "
            f"expected {status}: {response.text[:300]} {herald.logs()}"
        )


def _braces(text: str) -> str:
    """`text` as a `str.format` template that yields itself."""
    return text.replace("{", "{{").replace("}", "}}")


# -- the bodies --------------------------------------------------------------------------------
#
# Each builder returns a body of `size` bytes, or as close below it as its shape allows.


def _item(i: int, metadata: str, body: str = "Hello, your order has shipped.") -> str:
    return (
        f'{{"channel":"email","to":"user{i}@example.com","subject":"Order {i} has shipped",'
        f'"body":"{body}","reference":"hostile-{i}","metadata":{metadata}}}'
    )


def _flat_metadata(size: int, i: int = 0) -> str:
    """A flat object of at most `size` bytes: what a client might attach to a notification."""
    fields: dict[str, Any] = {"order_id": f"ord-{i:08d}", "customer": {"id": i}, "tags": ["a"]}
    for n in range(size // 40):
        fields[f"attr_{n:03d}"] = f"value {n} of the attributes"
        if len(json.dumps(fields, separators=(",", ":"))) > size:
            del fields[f"attr_{n:03d}"]
            break
    return json.dumps(fields, separators=(",", ":"))


def _batch(items: list[str]) -> str:
    return '{"notifications":[' + ",".join(items) + "]}"


def _envelope(path: str, metadata: str, before: int = 0) -> str:
    """A notification whose `metadata` is `metadata`: the body itself, or a batch item after
    `before` valid ones."""
    if path == SINGLE:
        return _item(0, metadata)
    return _batch([_item(i, _flat_metadata(300, i)) for i in range(before)] + [_item(0, metadata)])


def _pad(body: str, size: int) -> bytes:
    """`body` with its first "~" replaced by text, up to `size` bytes."""
    return body.replace("~", "x" * (size - len(body) + 1), 1).encode()


def _valid(path: str, size: int) -> bytes:
    if path == SINGLE:
        # The text fills the body; an email body or HTML part holds at most 512 Ki characters.
        item = _item(0, _flat_metadata(3500), body="~")
        if size > 500 * KIB:
            item = item.replace('"body":"~"', '"body":"%s","html":"~"' % ("x" * (size // 2)))
        return _pad(item, size)
    count = min(1000, max(1, size // KIB))
    items = [_item(i, _flat_metadata(size // count - 230, i)) for i in range(count)]
    items[-1] = items[-1].replace('"body":"', '"body":"~', 1)
    return _pad(_batch(items), size)


def _bare(path: str, size: int) -> bytes:
    return b"[" * (size // 2) + b"]" * (size // 2)


def _deep(path: str, size: int) -> bytes:
    head, tail = _envelope(path, '{"m":~}', before=2).split("~")
    depth = (size - len(head) - len(tail)) // 2
    return (head + "[" * depth + "]" * depth + tail).encode()


# Siblings in an object level and in an array level (JSON source, `{i}` numbers them):
# scalars and small shallow containers, or strings full of brackets, escaped quotes and
# backslashes, which the scan must skip as strings.
_TRICKY = ('[[[{{{"]]]}}}\\', '\\"[{\\\\"}]\\', '[{"\\u005b:,"{[')
_SIBLINGS = {
    "wide": (
        ('"n{i}":{i}', '"s{i}":"sibling {i}"', '"a{i}":[1,2,{{"k":null}}]', '"o{i}":{{"y":{{}}}}'),
        ("{i}", '"sibling {i}"', '[1,2,{{"k":null}}]', '{{"x":[true,false],"y":{{}}}}'),
    ),
    "strings": (
        tuple(f'"{n}{{i}}":' + _braces(json.dumps(t)) for n, t in zip("stu", _TRICKY, strict=True)),
        tuple(_braces(json.dumps(t)) for t in _TRICKY),
    ),
}


def _nested(kind: str, depth: int, width: int) -> str:
    """`depth` levels alternating objects and arrays, each with `width` siblings before the
    next level, so the deepest point comes last in the body."""
    in_object, in_array = _SIBLINGS[kind]
    opened, closed = [], []
    for level in range(depth):
        pool = in_object if level % 2 == 0 else in_array
        siblings = ",".join(pool[n % len(pool)].format(i=level * 100_000 + n) for n in range(width))
        if level % 2 == 0:
            opened.append("{" + siblings + f',"next{level}":')
            closed.append("}")
        else:
            opened.append("[" + siblings + ",")
            closed.append("]")
    return "".join(opened) + '"end"' + "".join(reversed(closed))


def _widest(make: Any, size: int) -> bytes:
    """`make(width)` with the largest width that fits in `size` bytes (its length grows
    linearly with the width, apart from the digits of the numbering)."""
    one, two = len(make(1)), len(make(2))
    width = max(1, (size - one) // max(1, two - one) + 1)
    while width > 1 and len(body := make(width)) > size:
        width = max(1, width - 1 - (len(body) - size) // max(1, two - one))
    return make(width).encode()


def _wide(path: str, size: int) -> bytes:
    return _widest(lambda w: _envelope(path, _nested("wide", WIDE_LEVELS, w)), size)


def _strings(path: str, size: int) -> bytes:
    return _widest(lambda w: _envelope(path, _nested("strings", WIDE_LEVELS, w)), size)


def _at_limit(path: str, size: int) -> bytes:
    if path == SINGLE:
        # Its siblings hold two levels of containers: 30 levels of them make 32.
        nested = lambda w: _envelope(path, _nested("wide", MAX_DEPTH - 2, w))  # noqa: E731
        return _widest(nested, size)
    # Up to 1000 items, each with 32 levels of metadata (one sibling per level, under 1 KiB).
    count = min(1000, max(1, size // KIB))
    items = [_item(i, _nested("wide", MAX_DEPTH, 1)) for i in range(count)]
    items[-1] = items[-1].replace('"body":"', '"body":"~', 1)
    return _pad(_batch(items), size)


def _unterminated(path: str, size: int) -> bytes:
    brackets = ",".join(["[]"] * (MAX_DEPTH + 8))
    body = _envelope(path, '{"a":[' + brackets + '],"s":"~')
    head = body[: body.index("~")]  # nothing closes the string, the item or the body
    return (head + '\\"' * ((size - len(head)) // 2)).encode()


_BUILDERS = {
    "valid": _valid,
    "bare": _bare,
    "deep": _deep,
    "wide": _wide,
    "strings": _strings,
    "at-limit": _at_limit,
    "unterminated": _unterminated,
}


def details(results: dict[str, Any]) -> str:
    """Every cell of a results file's `hostile_json` as a Markdown table: median (min-max)
    over the runs, and the ratio to the valid body of the same size on the same endpoint (of
    the smallest valid size, marked *, for sizes the valid bodies were not sent at)."""
    result = results["benchmarks"]["hostile_json"]
    runs: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for variant in result["variants"].values():
        for info in variant["info"]:
            for cell in info["cells"]:
                runs.setdefault((cell["shape"], cell["endpoint"], cell["kib"]), []).append(cell)

    def median(key: tuple[str, str, int], field: str = "ms_per_kib") -> float:
        return statistics.median(c[field] for c in runs[key])

    valid_sizes = sorted(kib for shape, _, kib in runs if shape == "valid")
    lines = [
        "| shape | endpoint | KiB | status | CPU per KiB (ms) | CPU per request (ms) | / valid |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for (shape, endpoint, kib), cells in runs.items():
        values = [c["ms_per_kib"] for c in cells]
        ref_kib = kib if kib in valid_sizes else (valid_sizes or [kib])[0]
        ref = ("valid", endpoint, ref_kib)
        ratio = f"{median((shape, endpoint, kib)) / median(ref):.2f}x" if ref in runs else "-"
        if ref_kib != kib and ref in runs:
            ratio += "*"
        lines.append(
            f"| {SHAPES[shape][0]} | {endpoint} | {kib:,} | {cells[0]['status']} "
            f"| {_fmt(median((shape, endpoint, kib)))} ({_fmt(min(values))}-{_fmt(max(values))}) "
            f"| {_fmt(median((shape, endpoint, kib), 'cpu_ms_per_request'))} | {ratio} |"
        )
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


if __name__ == "__main__":
    import sys
    from pathlib import Path

    from bench.env import ROOT

    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench" / "results" / "latest.json"
    print(details(json.loads(path.read_text())))
