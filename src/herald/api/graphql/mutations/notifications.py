"""Send and cancel notifications: decode, call the use case, encode; the rules are the core's."""

from __future__ import annotations

import re

import strawberry

from herald.api.graphql.context import Info
from herald.api.graphql.errors import with_fields
from herald.api.graphql.queries import parse_id
from herald.api.graphql.types.inputs import NotificationInput
from herald.api.graphql.types.notification import Notification
from herald.errors import FieldProblem, HeraldError

_BATCH_ITEM = re.compile(r"^notifications\[(\d+)\]\.?")
_SNAKE = re.compile(r"_([a-z])")


def _camel(field: str) -> str:
    return _SNAKE.sub(lambda m: m.group(1).upper(), field)


def _one(problem: FieldProblem) -> str:
    field = _camel(problem.field)
    if field.lower().startswith("idempotency"):
        return "idempotencyKey"
    return field if field.split(".")[0] == "input" else f"input.{field}"


def _batch(problem: FieldProblem) -> str:
    field = _camel(problem.field)
    if field.lower().startswith("idempotency"):
        return "idempotencyKey"
    if field.startswith("inputs"):
        return field
    if (item := _BATCH_ITEM.match(field)) is not None:
        rest = field[item.end() :]
        return f"inputs[{item.group(1)}]" + (f".{rest}" if rest else "")
    return "inputs" if field in ("notifications", "(body)") else field


@strawberry.type
class NotificationMutationMixin:
    @strawberry.mutation(
        description="Store the notification and queue its delivery (`QUEUED` or `SCHEDULED`). "
        "The same idempotencyKey and input (over GraphQL or REST) returns the first result."
    )
    async def send_notification(
        self, info: Info, input: NotificationInput, idempotency_key: str | None = None
    ) -> Notification:
        principal = await info.context.principal()
        try:
            submitted = await info.context.use_cases.send_notification(
                principal, input.to_domain("input"), idempotency_key=idempotency_key
            )
        except HeraldError as exc:
            raise with_fields(exc, _one) from exc
        return Notification.from_domain(submitted.notifications[0])

    @strawberry.mutation(
        description="All or nothing: one bad input fails them all, naming every bad field."
    )
    async def send_notifications(
        self, info: Info, inputs: list[NotificationInput], idempotency_key: str | None = None
    ) -> list[Notification]:
        principal = await info.context.principal()
        try:
            items = [item.to_domain(f"inputs[{i}]") for i, item in enumerate(inputs)]
            submitted = await info.context.use_cases.send_notifications(
                principal, items, idempotency_key=idempotency_key
            )
        except HeraldError as exc:
            raise with_fields(exc, _batch) from exc
        return [Notification.from_domain(n) for n in submitted.notifications]

    @strawberry.mutation(description="Cancel it if no provider has it yet (CONFLICT otherwise).")
    async def cancel_notification(self, info: Info, id: strawberry.ID) -> Notification:
        cancelled = await info.context.use_cases.cancel_notification(
            await info.context.principal(), parse_id(id)
        )
        return Notification.from_domain(cancelled)
