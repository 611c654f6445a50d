"""Domain errors and the one place that turns any error into RFC 9457 problem details.

Services raise `HeraldError` subclasses, which carry their HTTP status; route handlers never
build error responses themselves. A database or Redis outage becomes a 503 at once; anything
else unexpected is a 500, logged with its traceback, because it is a bug.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, SerializationException
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

log = structlog.get_logger()

PROBLEM_JSON = "application/problem+json"


class HeraldError(Exception):
    """Base of Herald's domain errors; `status_code` and `title` say how the API answers."""

    status_code = 500
    title = "Internal Server Error"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class BadRequest(HeraldError):
    status_code = 400
    title = "Bad Request"


class Unauthorized(HeraldError):
    status_code = 401
    title = "Unauthorized"


class NotFound(HeraldError):
    status_code = 404
    title = "Not Found"


class Conflict(HeraldError):
    status_code = 409
    title = "Conflict"


class ValidationFailed(HeraldError):
    """The request was well-formed but a field is wrong; `errors` names each field."""

    status_code = 422
    title = "Unprocessable Content"


class Unavailable(HeraldError):
    status_code = 503
    title = "Service Unavailable"


def problem(
    status: int, title: str, detail: str, *, instance: str | None = None, **extra: Any
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update({key: value for key, value in extra.items() if value is not None})
    headers = {"Retry-After": "5"} if status == 503 else None
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


_OUTAGES = (
    OperationalError,
    PoolTimeoutError,
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,
    TimeoutError,
    OSError,
)


def is_outage(exc: BaseException) -> bool:
    """True for errors that mean Postgres or Redis is unreachable, not a bug."""
    if isinstance(exc, _OUTAGES):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and isinstance(cause, _OUTAGES)


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    path = request.url.path
    if isinstance(exc, HeraldError):
        return problem(exc.status_code, exc.title, exc.detail, instance=path, errors=exc.errors)
    if isinstance(exc, HTTPException):
        if exc.status_code == 400:
            return _bad_request(exc, path)
        errors = exc.extra if isinstance(exc.extra, list) and exc.extra else None
        title = _TITLES.get(exc.status_code, "Error")
        detail = _DETAILS.get(exc.status_code) or exc.detail or title
        response = problem(exc.status_code, title, detail, instance=path, errors=errors)
        if exc.headers:
            response.headers.update(exc.headers)
        return response
    if is_outage(exc):
        log.warning("http.dependency_unavailable", error=f"{type(exc).__name__}: {exc}")
        return problem(
            503,
            "Service Unavailable",
            "A backing service (database or queue) is unavailable; nothing was changed. "
            "Retry later.",
            instance=path,
        )
    log.exception("http.unhandled_error")
    return problem(500, "Internal Server Error", "An unexpected error occurred.", instance=path)


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


def _bad_request(exc: HTTPException, path: str) -> Response[dict[str, Any]]:
    if isinstance(exc.extra, list) and exc.extra:
        errors = [_field_error(item) for item in exc.extra if isinstance(item, dict)]
        first = errors[0]
        return problem(
            400,
            "Bad Request",
            f"{first['field']}: {first['message']}",
            instance=path,
            errors=errors,
        )
    detail = exc.detail or "Bad request."
    if isinstance(exc.__cause__ or exc.__context__, msgspec.DecodeError | SerializationException):
        detail = f"The request body is not valid JSON: {detail}"
    return problem(400, "Bad Request", detail, instance=path)


_TITLES = {
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
    503: "Service Unavailable",
}
# Replaces Litestar's generic wording with something a client can act on.
_DETAILS = {
    404: "No resource at this path.",
    413: "The request body is larger than the 1 MiB limit.",
}

exception_handlers: dict[type[Exception] | int, Any] = {Exception: handle_exception}

__all__ = [
    "PROBLEM_JSON",
    "BadRequest",
    "Conflict",
    "HeraldError",
    "NotFound",
    "Unauthorized",
    "Unavailable",
    "ValidationFailed",
    "exception_handlers",
    "problem",
]
