"""One module per benchmark; each registers itself with `bench.core.register`.

Every module in this package is imported by `bench.core.benchmarks()`, so adding a benchmark
is adding a module. `ORDER` only fixes the order they run and print in.

Planned (they need the notifications API): `e2e` (notifications through the HTTP API,
single and batch), `http_under_load` (GET latency with idle vs saturated workers), `memory`
(one unified process vs the split deployment), `batch` (the batch API).
"""

ORDER = ["pickup", "throughput", "e2e", "http_under_load", "memory", "batch"]
