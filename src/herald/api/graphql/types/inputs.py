"""The inputs: what to send, and how to filter a list or a subscription.

They convert to the domain's `NotificationInput` by msgspec (the same decoder REST uses),
after the nesting limit has been checked on the JSON fields, so no rule is written twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

import msgspec
import strawberry

from herald.api.graphql.types.enums import Channel, Priority, Status
from herald.api.graphql.types.scalars import JSON
from herald.errors import FieldProblem, InvalidInput
from herald.notifications import model, nesting

_T = TypeVar("_T")


@strawberry.input(description="A WhatsApp template: the alternative to `body`.")
class WhatsAppTemplateInput:
    name: str
    language: str
    parameters: list[str] = strawberry.field(default_factory=list)


@strawberry.input(description="One notification to send: one message to one address.")
class NotificationInput:
    channel: Channel
    to: str
    subject: str | None = None
    body: str | None = None
    html: str | None = None
    data: JSON | None = strawberry.field(
        default=None, description="Push data payload (an object of strings)."
    )
    template: WhatsAppTemplateInput | None = None
    priority: Priority | None = None
    send_at: datetime | None = None
    reference: str | None = None
    metadata: JSON | None = strawberry.field(
        default=None,
        description=f"A JSON object kept with it: at most 4 KiB, nested at most "
        f"{nesting.MAX_DEPTH} levels.",
    )

    def to_domain(self, field: str) -> model.NotificationInput:
        """The domain input; `field` is this input's argument path (`input`, `inputs[2]`)."""
        for name, value in (("metadata", self.metadata), ("data", self.data)):
            if nesting.depth_exceeds(value):
                path = f"{field}.{name}"
                message = f"is nested more than {nesting.MAX_DEPTH} levels deep"
                raise InvalidInput(f"{path} {message}", problems=[FieldProblem(path, message)])
        raw: dict[str, Any] = {
            "channel": self.channel.value,
            "to": self.to,
            "subject": self.subject,
            "body": self.body,
            "html": self.html,
            "data": self.data,
            "template": None
            if self.template is None
            else {
                "name": self.template.name,
                "language": self.template.language,
                "parameters": self.template.parameters,
            },
            "send_at": self.send_at,
            "reference": self.reference,
            "metadata": self.metadata,
        }
        if self.priority is not None:
            raw["priority"] = self.priority.value
        return convert(raw, model.NotificationInput, field)


def convert(raw: dict[str, Any], into: type[_T], field: str) -> _T:
    """A GraphQL input's values as the domain's input struct; a type error is InvalidInput
    naming the argument path (`input.data`)."""
    try:
        return msgspec.convert(raw, into, from_attributes=False)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `$.")
        where = where.rstrip("`").replace("[...]", "")
        path = f"{field}.{_camel(where)}" if where else field
        raise InvalidInput(
            f"{path} {message}", problems=[FieldProblem(path, _lower(message))]
        ) from None


def _camel(path: str) -> str:
    head, *rest = path.split("_")
    return head + "".join(part.title() for part in rest)


def _lower(message: str) -> str:
    return message[:1].lower() + message[1:]


@strawberry.input(description="Only notifications with all of these.")
class NotificationFilter:
    status: Status | None = None
    channel: Channel | None = None
    reference: str | None = None
