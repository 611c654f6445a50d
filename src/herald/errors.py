"""Herald's domain errors: what went wrong, in the domain's words, never in HTTP's.

Use cases raise these; each interface maps them in one place (REST to RFC 9457 problem
details in `herald.api.rest.problems`, and so on for the others) by their `kind`. A
`ValidationFailed` carries one `FieldProblem` per bad field. `is_outage` tells an unreachable
Postgres or Redis (the caller may retry later) from a bug.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import msgspec
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

ErrorKind = Literal[
    "invalid_input",
    "validation_failed",
    "unauthenticated",
    "forbidden",
    "not_found",
    "conflict",
    "rate_limited",
    "unavailable",
]


class FieldProblem(msgspec.Struct, omit_defaults=True):
    """One bad field: its path (`to`, `notifications[3].body`), what is wrong, the item index."""

    field: str
    message: str
    index: int | None = None


class HeraldError(Exception):
    """Base of the domain errors; `kind` is what every interface maps."""

    kind: ClassVar[ErrorKind]

    def __init__(self, detail: str, *, problems: list[FieldProblem] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.problems = problems or []


class InvalidInput(HeraldError):
    """The input cannot be read as the operation's input (a wrong type, an unknown field, a
    cursor this server never issued, JSON nested too deep)."""

    kind = "invalid_input"


class ValidationFailed(HeraldError):
    """The input reads fine but breaks a rule; `problems` names every bad field."""

    kind = "validation_failed"


class Unauthenticated(HeraldError):
    kind = "unauthenticated"


class Forbidden(HeraldError):
    kind = "forbidden"


class NotFound(HeraldError):
    kind = "not_found"


class Conflict(HeraldError):
    kind = "conflict"


class RateLimited(HeraldError):
    kind = "rate_limited"

    def __init__(self, detail: str, *, retry_after: float) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(HeraldError):
    """A backing service (Postgres, Redis) is unreachable; nothing was changed."""

    kind = "unavailable"


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
    if isinstance(exc, (*_OUTAGES, Unavailable)):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and isinstance(cause, _OUTAGES)


def summary(problems: list[FieldProblem]) -> str:
    """One line for a list of problems: the first, and how many more."""
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{first.field} {first.message}{more}"
