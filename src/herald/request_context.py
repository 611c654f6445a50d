"""Per-request context: request id, one log line per request, and HTTP metrics.

Installed around Litestar's router, so it sees every request, including 404s, and reads the
matched route template (a bounded label) after routing.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from herald import metrics
from herald.queue.lag import note_request

log = structlog.get_logger()

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_HEADER = b"x-request-id"
# Health probes and scrapes would drown the log; they are still counted in the metrics.
_QUIET_ROUTES = frozenset({"/health/live", "/health/ready", "/metrics"})


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == _HEADER:
            candidate = value.decode("latin-1")
            if _VALID_REQUEST_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, quiet_prefixes: tuple[str, ...] = ()) -> None:
        """`quiet_prefixes`: routes polled by browsers (dashboard partials) that are counted
        in the metrics but not logged line by line."""
        self.app = app
        self.quiet_prefixes = quiet_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap]
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        note_request()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers: Any = message.setdefault("headers", [])
                headers.append((_HEADER, request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            note_request()
            duration = time.perf_counter() - started
            route = scope.get("path_template") or "<unmatched>"
            method: str = scope["method"]  # type: ignore[typeddict-item]
            metrics.http_requests.labels(method, route, str(status)).inc()
            metrics.http_request_duration.labels(method, route).observe(duration)
            if route not in _QUIET_ROUTES and not route.startswith(self.quiet_prefixes or ("\0",)):
                log.info(
                    "http.request",
                    method=method,
                    route=route,
                    status=status,
                    duration_ms=round(duration * 1000, 2),
                )
            structlog.contextvars.unbind_contextvars("request_id")
