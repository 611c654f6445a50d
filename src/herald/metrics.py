"""Every Prometheus instrument Herald exports, in one place.

Labels are bounded by construction: queue names, job function names, channels, provider
names, outcomes, HTTP methods, route templates and status codes. Never ids or addresses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import Counter, Gauge, Histogram, Info, disable_created_metrics

# `*_created` series double the series count and no dashboard or alert of ours uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# -- HTTP ------------------------------------------------------------------------------------
http_requests = Counter(
    "herald_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
http_request_duration = Histogram(
    "herald_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)

# -- gRPC ------------------------------------------------------------------------------------
grpc_requests = Counter(
    "herald_grpc_requests",
    "gRPC calls answered, by method and status code (a stream counts when it ends).",
    ["method", "code"],
)
grpc_request_duration = Histogram(
    "herald_grpc_request_duration_seconds",
    "Time to answer a unary gRPC call, by method (streams are not timed: they last).",
    ["method"],
    buckets=_LATENCY_BUCKETS,
)

# -- jobs ------------------------------------------------------------------------------------
jobs_enqueued = Counter(
    "herald_jobs_enqueued", "Jobs put on a queue by this process.", ["queue", "function"]
)
jobs_started = Counter("herald_jobs_started", "Jobs started.", ["queue", "function"])
jobs_succeeded = Counter("herald_jobs_succeeded", "Jobs that returned.", ["queue", "function"])
jobs_failed = Counter("herald_jobs_failed", "Jobs that raised or timed out.", ["queue", "function"])
jobs_retried = Counter(
    "herald_jobs_retried", "Jobs that asked to run again later.", ["queue", "function"]
)
jobs_cancelled = Counter(
    "herald_jobs_cancelled",
    "Jobs cancelled (at shutdown past the grace period); they stay queued and run again.",
    ["queue", "function"],
)
job_duration = Histogram(
    "herald_job_duration_seconds",
    "Time a job ran, by queue and function.",
    ["queue", "function"],
    buckets=_LATENCY_BUCKETS,
)
job_pickup_latency = Histogram(
    "herald_job_pickup_latency_seconds",
    "Time from a job being due (enqueued, or its deferred time) to its start.",
    ["queue"],
    buckets=(0.0005, *_LATENCY_BUCKETS),
)
jobs_in_flight = Gauge(
    "herald_jobs_in_flight", "Jobs running now in this process.", ["queue", "function"]
)

# -- queues, read from Redis at scrape time ----------------------------------------------------
queue_depth = Gauge("herald_queue_depth", "Jobs due now and waiting to start.", ["queue"])
queue_deferred = Gauge("herald_queue_deferred", "Jobs waiting for a later time.", ["queue"])
queue_in_progress = Gauge(
    "herald_queue_in_progress", "Jobs started by some worker and not finished.", ["queue"]
)
queue_oldest_age = Gauge(
    "herald_queue_oldest_job_age_seconds", "How long the oldest due job has waited.", ["queue"]
)

# -- runtime ---------------------------------------------------------------------------------
event_loop_lag = Histogram(
    "herald_event_loop_lag_seconds",
    "How late the event loop ran a timer, sampled every 50 ms.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
lag_guard_engaged = Counter(
    "herald_lag_guard_engaged",
    "Times the workers stopped taking new jobs because the API's event loop lagged.",
)
worker_share_engaged = Counter(
    "herald_worker_share_engaged",
    "Times the workers kept to API_FIRST_WORKER_SHARE of their slots because the process's"
    " CPU was saturated while the API served.",
)
worker_share_held = Gauge(
    "herald_worker_share_held",
    "1 while the workers keep to API_FIRST_WORKER_SHARE of their slots, else 0.",
)
worker_restarts = Counter(
    "herald_worker_restarts", "Worker loops restarted after they failed.", ["queue"]
)
worker_wakeups = Counter(
    "herald_worker_wakeups",
    "Worker loops woken for new jobs due now, by source (local: enqueued by this process; "
    "pubsub: by another process). Jobs not woken for are found by the next poll.",
    ["queue", "source"],
)
memory_ceiling_bytes = Gauge(
    "herald_memory_ceiling_bytes",
    "MAX_MEMORY_MB in bytes (0: no ceiling); compare with process_resident_memory_bytes.",
)
memory_ceiling_exceeded = Gauge(
    "herald_memory_ceiling_exceeded",
    "1 once RSS stayed above MAX_MEMORY_MB and the process is draining to be restarted.",
)
worker_loop_up = Gauge(
    "herald_worker_loop_up", "1 while the queue's worker loop is running, else 0.", ["queue"]
)
role_info = Info("herald_role", "The roles this process runs.")
build_info = Info("herald_build", "Herald's version.")

# -- notifications -----------------------------------------------------------------------------
notifications = Counter(
    "herald_notifications",
    "Delivery attempts by channel, provider and outcome (sent, failed, retried).",
    ["channel", "provider", "outcome"],
)
submission_group_size = Histogram(
    "herald_submission_group_size",
    "Single submissions written together in one transaction (group commit), per group.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000),
)
provider_latency = Histogram(
    "herald_provider_latency_seconds",
    "Time a provider took to answer a send, by channel and provider.",
    ["channel", "provider"],
    buckets=_LATENCY_BUCKETS,
)

# -- delivery guarantees -------------------------------------------------------------------------
reconciler_runs = Counter(
    "herald_reconciler_runs", "Reconciler passes run by this process (holding the lock)."
)
reconciler_recovered = Counter(
    "herald_reconciler_recovered",
    "Notifications the reconciler put back on a queue, by reason "
    "(lost: due but not in Redis; lease_expired: its worker died; scheduled: time has come; "
    "fallback: a message's next channel accepted by the sweep).",
    ["reason"],
)
status_events_published = Counter(
    "herald_status_events_published",
    "Status events published on the event feed (Redis pub/sub) by this process.",
)
status_events_dropped = Counter(
    "herald_status_events_dropped",
    "Status events not published (Redis away, or the buffer full); the events table has them.",
)
retention_deleted = Counter(
    "herald_retention_deleted",
    "Rows deleted by retention: finished notifications past RETENTION_DAYS (their events go with "
    "them), messages past it with no notification left, and expired idempotency keys.",
    ["table"],
)
rate_limit_waits = Counter(
    "herald_rate_limit_waits",
    "Deliveries that waited for a send slot, or were deferred, under the channel's rate limit.",
    ["channel"],
)

# -- GraphQL and live streams ------------------------------------------------------------------
graphql_operations = Counter(
    "herald_graphql_operations",
    "GraphQL operations by type, root field (a schema name, never the client's operation "
    "name) and outcome (ok, or the first error's code).",
    ["type", "field", "outcome"],
)
live_streams_open = Gauge(
    "herald_live_streams_open",
    "Open live streams: graphql (subscriptions), websocket (/v1/notifications/stream), sse.",
    ["interface"],
)
live_events_sent = Counter(
    "herald_live_events_sent", "Status events sent to live-stream clients.", ["interface"]
)
live_events_dropped = Counter(
    "herald_live_events_dropped",
    "Status events dropped because a live-stream client fell behind (it is told, and resyncs).",
    ["interface"],
)


def prime(queues: Iterable[str], providers: Mapping[str, str]) -> None:
    """Create the labelled series this process can produce, at zero, before they move.

    A counter series that first appears at 1 is invisible to `increase()`; priming makes the
    first restart, failure or recovery count in alerts.
    """
    for queue in queues:
        worker_restarts.labels(queue)
        for source in ("local", "pubsub"):
            worker_wakeups.labels(queue, source)
        worker_loop_up.labels(queue)
    for reason in ("lease_expired", "lost", "scheduled", "fallback"):
        reconciler_recovered.labels(reason)
    for table in ("notifications", "messages", "idempotency_keys"):
        retention_deleted.labels(table)
    for channel, provider in providers.items():
        rate_limit_waits.labels(channel)
        for outcome in ("sent", "failed", "retried"):
            notifications.labels(channel, provider, outcome)
