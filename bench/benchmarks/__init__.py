"""One module per benchmark; each registers itself with `bench.core.register`.

Every module in this package is imported by `bench.core.benchmarks()`, so adding a benchmark
is adding a module. `ORDER` only fixes the order they run and print in.
"""

ORDER = [
    "pickup",
    "throughput",
    "batch",
    "e2e",
    "single",
    "drain",
    "recovery",
    "http_under_load",
    "memory",
    "dashboard_overview",
    "hostile_json",
    "startup",
]
