"""Template types: a saved version, a page of them, a preview. `locales` (locale -> channel
-> content) is JSON: GraphQL has no maps, and it is the same object as REST's."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
import strawberry

from herald.api.graphql.types.enums import Channel
from herald.api.graphql.types.scalars import JSON
from herald.errors import FieldProblem, InvalidInput
from herald.messages import template_input as wire
from herald.messages.templates import RenderedContent, TemplateVersion
from herald.notifications import nesting


def _decode(value: dict[str, Any], kind: type[Any], field: str) -> Any:
    for name, inner in value.items():
        if nesting.depth_exceeds(inner):
            message = f"is nested more than {nesting.MAX_DEPTH} levels deep"
            raise InvalidInput(message, problems=[FieldProblem(f"{field}.{name}", message)])
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"{field}: {exc}", problems=[FieldProblem(field, str(exc))]) from None


@strawberry.input(description="A template to save: every save is a new version.")
class TemplateInput:
    default_locale: str
    locales: JSON = strawberry.field(
        description="Locale -> channel -> content, as REST's `locales` (email subject/text/"
        "html, sms body, push title/body/data, whatsapp text or template)."
    )
    category: str | None = None
    critical: bool = False

    def to_domain(self) -> wire.TemplateInput:
        return _decode(  # type: ignore[no-any-return]
            {
                "default_locale": self.default_locale,
                "locales": self.locales,
                "category": self.category,
                "critical": self.critical,
            },
            wire.TemplateInput,
            "input",
        )


def preview_input(
    data: Any,
    recipient: Any,
    recipient_id: str | None,
    locale: str | None,
    channels: list[Channel] | None,
    version: int | None,
) -> wire.PreviewInput:
    value: dict[str, Any] = {"data": data if data is not None else {}, "locale": locale}
    if recipient is not None and recipient_id is not None:
        message = "give recipient or recipientId, not both"
        raise InvalidInput(message, problems=[FieldProblem("recipientId", message)])
    if recipient is not None or recipient_id is not None:
        value["recipient"] = recipient if recipient is not None else recipient_id
    if channels is not None:
        value["channels"] = [c.value for c in channels]
    value["version"] = version
    return _decode(value, wire.PreviewInput, "preview")  # type: ignore[no-any-return]


@strawberry.type(description="A saved template version.")
class Template:
    key: str
    version: int
    category: str | None
    critical: bool
    default_locale: str
    locales: JSON
    created_at: datetime

    @classmethod
    def from_domain(cls, t: TemplateVersion) -> Template:
        return cls(
            key=t.key,
            version=t.version,
            category=t.category,
            critical=t.critical,
            default_locale=t.default_locale,
            locales=JSON(t.locales),
            created_at=t.created_at,
        )


@strawberry.type(description="Templates (their current versions) by key.")
class TemplatePage:
    items: list[Template]
    next_cursor: str | None


@strawberry.type(description="One channel rendered: the content of its notification.")
class RenderedChannel:
    channel: Channel
    subject: str | None
    body: str | None
    html: str | None
    data: JSON | None
    template: JSON | None

    @classmethod
    def from_domain(cls, r: RenderedContent) -> RenderedChannel:
        return cls(
            channel=Channel(r.channel),
            subject=r.subject,
            body=r.body,
            html=r.html,
            data=JSON(r.data) if r.data is not None else None,
            template=JSON(msgspec.to_builtins(r.template)) if r.template is not None else None,
        )


@strawberry.type(description="A template rendered for a preview.")
class TemplatePreview:
    key: str
    version: int
    locale_used: str
    channels: list[RenderedChannel]

    @classmethod
    def from_domain(cls, p: wire.PreviewOut) -> TemplatePreview:
        return cls(
            key=p.key,
            version=p.version,
            locale_used=p.locale_used,
            channels=[RenderedChannel.from_domain(c) for c in p.channels],
        )
