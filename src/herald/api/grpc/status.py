"""The one place gRPC turns an error into a status, and every call's context, log and metrics.

Domain errors map by their `kind`: bad input is INVALID_ARGUMENT with a `google.rpc.BadRequest`
naming each bad field in the rich status details (`grpc-status-details-bin`); a conflict
(cancelling a notification a provider already has, an idempotency key still in use) is
FAILED_PRECONDITION: the state of the notification, not a race, refuses it, so retrying the
same call cannot succeed. An unreachable Postgres or Redis is UNAVAILABLE (retry), and anything
else INTERNAL, logged with its stack, because it is a bug.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc
import structlog
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from herald import metrics
from herald.errors import ErrorKind, HeraldError, InvalidInput, RateLimited, is_outage
from herald.queue.lag import note_request
from herald.reporting import report_exception

log = structlog.get_logger()

CODES: dict[ErrorKind, grpc.StatusCode] = {
    "invalid_input": grpc.StatusCode.INVALID_ARGUMENT,
    "validation_failed": grpc.StatusCode.INVALID_ARGUMENT,
    "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
    "forbidden": grpc.StatusCode.PERMISSION_DENIED,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "conflict": grpc.StatusCode.FAILED_PRECONDITION,
    "rate_limited": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
}
_OUTAGE_DETAIL = (
    "A backing service (database or queue) is unavailable; nothing was changed. Retry later."
)
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

Request = TypeVar("Request")
Response = TypeVar("Response")


class Undecodable:
    """What a request's deserializer returns for bytes that are not the request message, so
    that the call answers INVALID_ARGUMENT (grpc itself would answer INTERNAL)."""

    def __init__(self, message_name: str, error: Exception) -> None:
        self.message_name = message_name
        self.error = error


def decoder(message_class: Any) -> Callable[[bytes], Any]:
    name = message_class.DESCRIPTOR.full_name

    def decode(data: bytes) -> Any:
        try:
            return message_class.FromString(data)
        except Exception as exc:  # DecodeError, or nesting past protobuf's own limit
            return Undecodable(name, exc)

    return decode


def to_status(exc: BaseException) -> grpc.Status:
    """The status a call ends with for `exc`."""
    if isinstance(exc, HeraldError):
        code = CODES[exc.kind]
        details: list[Any] = []
        if exc.problems:
            details.append(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=p.field, description=p.message
                        )
                        for p in exc.problems
                    ]
                )
            )
        if isinstance(exc, RateLimited):
            delay = duration_pb2.Duration()
            delay.FromMilliseconds(max(1, round(exc.retry_after * 1000)))
            details.append(error_details_pb2.RetryInfo(retry_delay=delay))
        return _status(code, exc.detail, details)
    if is_outage(exc):
        log.warning("grpc.dependency_unavailable", error=f"{type(exc).__name__}: {exc}")
        return _status(grpc.StatusCode.UNAVAILABLE, _OUTAGE_DETAIL, [])
    log.exception("grpc.unhandled_error")
    report_exception(exc)
    return _status(grpc.StatusCode.INTERNAL, "An unexpected error occurred.", [])


def _status(code: grpc.StatusCode, message: str, details: list[Any]) -> grpc.Status:
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message)
    for detail in details:
        status.details.add().Pack(detail)
    return rpc_status.to_status(status)


def _metadata(context: grpc.aio.ServicerContext[Any, Any], name: str) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == name and isinstance(value, str):
            return value
    return None


def _request_id(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    candidate = _metadata(context, "x-request-id")
    if candidate is not None and _VALID_REQUEST_ID.match(candidate):
        return candidate
    return uuid.uuid4().hex


def _check(request: object) -> None:
    if isinstance(request, Undecodable):
        raise InvalidInput(f"the request is not a valid {request.message_name}: {request.error}")


def _finish(method: str, code: grpc.StatusCode, started: float, *, timed: bool) -> None:
    note_request()
    duration = time.perf_counter() - started
    metrics.grpc_requests.labels(method, code.name).inc()
    if timed:
        metrics.grpc_request_duration.labels(method).observe(duration)
    log.info("grpc.request", code=code.name, duration_ms=round(duration * 1000, 2))


async def _fail(
    context: grpc.aio.ServicerContext[Any, Any],
    method: str,
    started: float,
    status: grpc.Status,
    *,
    timed: bool,
) -> NoReturn:
    """End the call with `status`, counted first: `abort` sends the status at once, so a
    client that has seen it finds it in the metrics and the log."""
    _finish(method, status.code, started, timed=timed)
    await context.abort(status.code, status.details, status.trailing_metadata)


def unary(
    method: str, handler: Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]
) -> Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]:
    """`handler` with the call's context bound in the log, errors mapped, and metrics."""

    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        started = time.perf_counter()
        note_request()
        code: grpc.StatusCode | None = grpc.StatusCode.OK
        with structlog.contextvars.bound_contextvars(
            request_id=_request_id(context), grpc_method=method
        ):
            try:
                _check(request)
                return await handler(request, context)
            except Exception as exc:
                if isinstance(exc, grpc.aio.AbortError):
                    raise
                code = None  # counted by `_fail`, before its status leaves
                await _fail(context, method, started, to_status(exc), timed=True)
            except BaseException:  # cancelled: the client went away or its deadline passed
                code = grpc.StatusCode.CANCELLED
                raise
            finally:
                if code is not None:
                    _finish(method, code, started, timed=True)

    return call


def unary_methods(
    spec: dict[str, tuple[Any, Any, Any]],
) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
    """Method handlers for `spec`, `{name: (handler, request class, response class)}`, each wrapped
    by `unary` and decoding its request with `decoder` (bad bytes: INVALID_ARGUMENT)."""
    return {
        name: grpc.unary_unary_rpc_method_handler(
            unary(name, method),
            request_deserializer=decoder(request),
            response_serializer=response.SerializeToString,
        )
        for name, (method, request, response) in spec.items()
    }


def stream(
    method: str,
    handler: Callable[[Any, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Any]],
) -> Callable[[Any, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Any]]:
    """`unary` for a server stream: each response is passed on as it comes."""

    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        started = time.perf_counter()
        code: grpc.StatusCode | None = grpc.StatusCode.OK
        with structlog.contextvars.bound_contextvars(
            request_id=_request_id(context), grpc_method=method
        ):
            try:
                _check(request)
                async for response in handler(request, context):
                    yield response
            except Exception as exc:
                if isinstance(exc, grpc.aio.AbortError):
                    raise
                code = None
                await _fail(context, method, started, to_status(exc), timed=False)
            except BaseException:
                code = grpc.StatusCode.CANCELLED
                raise
            finally:
                if code is not None:
                    _finish(method, code, started, timed=False)

    return call


def metadata(context: grpc.aio.ServicerContext[Any, Any], name: str) -> str | None:
    """The value of the call's metadata `name` (lower case), if sent."""
    return _metadata(context, name)
