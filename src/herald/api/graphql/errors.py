"""The one place GraphQL turns an error into the errors a client reads.

Every error gets `extensions.code`. A domain error maps by its `kind`; a field problem
becomes one `BAD_USER_INPUT` error per bad field, with `extensions.field` (the argument path,
`input.to`, `inputs[2].subject`); an unreachable Postgres or Redis is `UNAVAILABLE`; a
malformed or over-limit document is `GRAPHQL_VALIDATION_FAILED`; anything else is a bug:
logged with its stack and answered as `INTERNAL_SERVER_ERROR` with no detail.
"""

from __future__ import annotations

from typing import Any

import structlog
from graphql import GraphQLError

from herald.api.graphql.types.scalars import TooDeep
from herald.errors import ErrorKind, FieldProblem, HeraldError, is_outage
from herald.reporting import report_exception

log = structlog.get_logger()

CODES: dict[ErrorKind, str] = {
    "invalid_input": "BAD_USER_INPUT",
    "validation_failed": "BAD_USER_INPUT",
    "unauthenticated": "UNAUTHENTICATED",
    "forbidden": "FORBIDDEN",
    "not_found": "NOT_FOUND",
    "conflict": "CONFLICT",
    "rate_limited": "RATE_LIMITED",
    "unavailable": "UNAVAILABLE",
}
OUTAGE = "A backing service (database or queue) is unavailable; nothing was changed. Retry later."
INTERNAL = "An unexpected error occurred."


def with_fields(exc: HeraldError, name: Any) -> HeraldError:
    """The same error, its problems' fields renamed by `name(problem)` (domain field names to
    GraphQL argument paths)."""
    if not exc.problems:
        return exc
    problems = [FieldProblem(name(p), p.message, p.index) for p in exc.problems]
    return type(exc)(exc.detail, problems=problems)


def _root_cause(error: GraphQLError) -> BaseException | None:
    cause: BaseException | None = error.original_error
    while isinstance(cause, GraphQLError) and cause.original_error is not None:
        cause = cause.original_error
    return None if isinstance(cause, GraphQLError) else cause


def _with(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


def translate(error: GraphQLError) -> list[GraphQLError]:
    """The client's errors for one error graphql-core or a resolver raised."""
    cause = _root_cause(error)
    if cause is None:
        if error.extensions and "code" in error.extensions:
            return [error]
        code = "BAD_USER_INPUT" if error.message.startswith("Variable ") else None
        return [_with(error, error.message, {"code": code or "GRAPHQL_VALIDATION_FAILED"})]
    if isinstance(cause, HeraldError):
        code = CODES[cause.kind]
        if cause.problems:
            return [
                _with(error, f"{p.field} {p.message}", {"code": code, "field": p.field})
                for p in cause.problems
            ]
        return [_with(error, cause.detail, {"code": code})]
    if isinstance(cause, TooDeep):
        return [_with(error, error.message, {"code": "BAD_USER_INPUT"})]
    if is_outage(cause):
        log.warning("graphql.dependency_unavailable", error=f"{type(cause).__name__}: {cause}")
        return [_with(error, OUTAGE, {"code": "UNAVAILABLE"})]
    log.error("graphql.unhandled_error", path=error.path, exc_info=cause)
    if cause is not None:
        report_exception(cause)
    return [_with(error, INTERNAL, {"code": "INTERNAL_SERVER_ERROR"})]


def translate_all(errors: list[GraphQLError]) -> list[GraphQLError]:
    return [out for error in errors for out in translate(error)]
