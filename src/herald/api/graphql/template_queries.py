"""Read, list and preview templates: decode, call the template use case, encode."""

from __future__ import annotations

import strawberry

from herald.api.graphql.context import Info
from herald.api.graphql.errors import with_fields
from herald.api.graphql.types.enums import Channel
from herald.api.graphql.types.scalars import JSON
from herald.api.graphql.types.template import Template, TemplatePage, TemplatePreview, preview_input
from herald.errors import HeraldError

_ARGUMENTS = {"template_key": "key", "limit": "first", "cursor": "after"}


def _argument(field: str) -> str:
    return _ARGUMENTS.get(field, field)


@strawberry.type
class TemplateQueryMixin:
    @strawberry.field(description="One of your templates: the current version, or `version`.")
    async def template(self, info: Info, key: str, version: int | None = None) -> Template:
        try:
            found = await info.context.resources.templates.get_template(
                await info.context.principal(), key, version
            )
        except HeraldError as exc:
            raise with_fields(exc, lambda p: _argument(p.field)) from exc
        return Template.from_domain(found)

    @strawberry.field(description="Your templates (current versions) by key, a page at a time.")
    async def templates(
        self, info: Info, first: int = 50, after: str | None = None
    ) -> TemplatePage:
        try:
            page = await info.context.resources.templates.list_templates(
                await info.context.principal(), limit=first, cursor=after
            )
        except HeraldError as exc:
            raise with_fields(exc, lambda p: _argument(p.field)) from exc
        return TemplatePage(
            items=[Template.from_domain(t) for t in page.items], next_cursor=page.next_cursor
        )

    @strawberry.field(
        description="Render a template with data and a stored recipient (`recipientId`) or "
        "an inline one (an object with id, email, phone, whatsapp, locale, timezone, data); "
        "a missing variable is a BAD_USER_INPUT error naming it (`data.name`)."
    )
    async def template_preview(
        self,
        info: Info,
        key: str,
        data: JSON | None = None,
        recipient: JSON | None = None,
        recipient_id: str | None = None,
        locale: str | None = None,
        channels: list[Channel] | None = None,
        version: int | None = None,
    ) -> TemplatePreview:
        try:
            item = preview_input(data, recipient, recipient_id, locale, channels, version)
            rendered = await info.context.resources.templates.preview_template(
                await info.context.principal(), key, item
            )
        except HeraldError as exc:
            raise with_fields(exc, lambda p: _argument(p.field.removeprefix("preview."))) from exc
        return TemplatePreview.from_domain(rendered)
