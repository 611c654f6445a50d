"""The one place REST turns an error into RFC 9457 problem details.

Built on Litestar's problem-details plugin: a domain error maps by its `kind`, Litestar's own
HTTP errors (malformed JSON, a wrong type, 404, 413, 415) keep their status with wording a
client can act on, an unreachable Postgres or Redis is a 503 with `Retry-After`, and anything
else is a 500, logged with its stack, because it is a bug.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, SerializationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)

from herald.api.rest.schemas import Problem as ProblemDocument
from herald.errors import ErrorKind, FieldProblem, HeraldError, RateLimited, is_outage
from herald.notifications.nesting import MAX_DEPTH
from herald.reporting import report_exception

log = structlog.get_logger()

PROBLEM_JSON = "application/problem+json"

STATUS: dict[ErrorKind, int] = {
    "invalid_input": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "validation_failed": 422,
    "rate_limited": 429,
    "unavailable": 503,
}
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
# Replaces Litestar's generic wording with something a client can act on.
_DETAILS = {
    404: "No resource at this path.",
    413: "The request body is larger than the 1 MiB limit.",
}
_OUTAGE_DETAIL = (
    "A backing service (database or queue) is unavailable; nothing was changed. Retry later."
)


class Problem(ProblemDetailsException):
    """A problem details response: `type`, `title`, `status`, `detail`, `instance` (the
    request's path) and, for field errors, `errors: [{field, message}]`."""

    def to_response(self, request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        self.instance = request.url.path
        return super().to_response(request)


def problem(
    status: int,
    detail: str,
    *,
    problems: list[FieldProblem] | list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Problem:
    extra: dict[str, Any] = {}
    if problems:
        extra["errors"] = [
            msgspec.to_builtins(p) if isinstance(p, FieldProblem) else p for p in problems
        ]
    if status == 503:
        headers = {"Retry-After": "5", **(headers or {})}
    return Problem(
        detail=detail,
        status_code=status,
        title=TITLES.get(status, "Error"),
        type_="about:blank",
        headers=headers,
        extra=extra or None,
    )


def from_domain(exc: HeraldError) -> Problem:
    headers = None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(max(1, round(exc.retry_after)))}
    return problem(STATUS[exc.kind], exc.detail, problems=exc.problems, headers=headers)


def from_http(exc: HTTPException) -> Problem:
    if isinstance(exc, Problem):
        return exc
    if exc.status_code == 400:
        return _bad_request(exc)
    errors = exc.extra if isinstance(exc.extra, list) and exc.extra else None
    title = TITLES.get(exc.status_code, "Error")
    detail = _DETAILS.get(exc.status_code) or exc.detail or title
    return problem(exc.status_code, detail, problems=errors, headers=exc.headers)


def from_any(exc: Exception) -> Problem:
    """Any exception as the problem REST answers with (and the dashboard shows)."""
    if isinstance(exc, HeraldError):
        return from_domain(exc)
    if isinstance(exc, HTTPException):
        return from_http(exc)
    if is_outage(exc):
        log.warning("http.dependency_unavailable", error=f"{type(exc).__name__}: {exc}")
        return problem(503, _OUTAGE_DETAIL)
    log.exception("http.unhandled_error")
    report_exception(exc)
    return problem(500, "An unexpected error occurred.")


def _handle_any(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return from_any(exc).to_response(request)


_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]+)`")


def _field_error(item: dict[str, Any]) -> dict[str, Any]:
    """Litestar's `{message, key, source}` as Herald's `{field, message}`."""
    message = str(item.get("message", ""))
    field = str(item.get("key") or "")
    if (unknown := _UNKNOWN_FIELD.search(message)) is not None:
        prefix = "" if field in ("", "data") else f"{field}."
        return {"field": prefix + unknown.group(1), "message": "is not a known field"}
    if field in ("", "data"):
        field = "(body)"
    return {"field": field, "message": message}


def _bad_request(exc: HTTPException) -> Problem:
    if isinstance(exc.extra, list) and exc.extra:
        errors = [_field_error(item) for item in exc.extra if isinstance(item, dict)]
        first = errors[0]
        return problem(400, f"{first['field']}: {first['message']}", problems=errors)
    detail = exc.detail or "Bad request."
    if isinstance(exc.__cause__ or exc.__context__, msgspec.DecodeError | SerializationException):
        detail = f"The request body is not valid JSON: {detail}"
    return problem(400, detail)


def problem_details_plugin() -> ProblemDetailsPlugin:
    return ProblemDetailsPlugin(
        ProblemDetailsConfig(
            exception_to_problem_detail_map={HeraldError: from_domain, HTTPException: from_http}
        )
    )


_DOCUMENTED = {
    400: "Malformed JSON, a wrong type, an unknown field, or JSON nested more than "
    f"{MAX_DEPTH} levels deep in a field.",
    401: "Missing, unknown or revoked API key.",
    404: "Nothing with this id (notification, recipient, push token) belongs to your API key.",
    406: "The request does not accept text/event-stream.",
    409: "Conflict (see detail).",
    413: "Request body over 1 MiB.",
    415: "Content type is not application/json.",
    422: "A field breaks a rule; `errors` names each one.",
    503: "Postgres or Redis is unavailable; nothing was stored.",
}


def responses(*statuses: int) -> dict[int, ResponseSpec]:
    """The OpenAPI description of the problems an operation can answer with."""
    return {
        status: ResponseSpec(
            data_container=ProblemDocument,
            description=_DOCUMENTED[status],
            media_type=PROBLEM_JSON,
        )
        for status in statuses
    }


# Everything the plugin's map does not cover: outages and bugs.
exception_handlers: dict[type[Exception] | int, Any] = {Exception: _handle_any}
