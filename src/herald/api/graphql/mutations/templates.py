"""Save and delete templates: decode, call the template use case, encode."""

from __future__ import annotations

import strawberry

from herald.api.graphql.context import Info
from herald.api.graphql.errors import with_fields
from herald.api.graphql.types.template import Template, TemplateInput
from herald.errors import FieldProblem, HeraldError


def _field(problem: FieldProblem) -> str:
    if problem.field == "template_key":
        return "key"
    field = problem.field.removeprefix("input.").removeprefix("input")
    field = {"default_locale": "defaultLocale"}.get(field, field)
    return f"input.{field}" if field else "input"


@strawberry.type
class TemplateMutationMixin:
    @strawberry.mutation(
        description="Save a new version of a template; one that does not compile is a "
        "BAD_USER_INPUT error naming the field and the line."
    )
    async def save_template(self, info: Info, key: str, input: TemplateInput) -> Template:
        try:
            saved = await info.context.resources.templates.save_template(
                await info.context.principal(), key, input.to_domain()
            )
        except HeraldError as exc:
            raise with_fields(exc, _field) from exc
        return Template.from_domain(saved)

    @strawberry.mutation(description="Delete a template (every version); true when done.")
    async def delete_template(self, info: Info, key: str) -> bool:
        try:
            await info.context.resources.templates.delete_template(
                await info.context.principal(), key
            )
        except HeraldError as exc:
            raise with_fields(exc, _field) from exc
        return True
