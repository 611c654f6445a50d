"""`/v1/templates`: save (every save a new version), read, list, delete and preview templates.

Each handler decodes the request, calls one template use case and encodes its result; errors
are domain errors, rendered in one place (`herald.api.rest.problems`).
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, Parameter, QueryParameter

from herald.api.rest.notifications import provide_principal, require_json
from herald.api.rest.problems import responses
from herald.auth.keys import Principal
from herald.messages.template_input import (
    PreviewInput,
    PreviewOut,
    TemplateInput,
    TemplateOut,
    TemplatePage,
    to_out,
)
from herald.messages.template_use_cases import TemplateUseCases
from herald.notifications.validation import MAX_PAGE
from herald.resources import Resources

TemplateKey = Annotated[str, Parameter(description="Your name for the template.", max_length=100)]


def template_use_cases(state: State) -> TemplateUseCases:
    resources: Resources = state.resources
    return resources.templates


class TemplateController(Controller):
    path = "/v1/templates"
    tags = ["templates"]
    security = [{"bearer": []}]
    dependencies = {"principal": Provide(provide_principal)}

    @put(
        "/{template_key:str}",
        summary="Save a template (a new version)",
        before_request=require_json(envelope=1),
        responses=responses(400, 401, 413, 415, 422, 503),
    )
    async def save(
        self,
        state: State,
        principal: NamedDependency[Principal],
        template_key: TemplateKey,
        data: JSONBody[TemplateInput],
    ) -> TemplateOut:
        """Every save is a new version (in the response). A template that does not compile is
        a 422 naming the field and the line."""
        saved = await template_use_cases(state).save_template(principal, template_key, data)
        return to_out(saved)

    @get(
        "/{template_key:str}",
        summary="Read a template",
        responses=responses(400, 401, 404, 503),
    )
    async def read(
        self,
        state: State,
        principal: NamedDependency[Principal],
        template_key: TemplateKey,
        version: Annotated[
            int | None,
            QueryParameter(ge=1, le=2**31 - 1, description="An older version (default: current)."),
        ] = None,
    ) -> TemplateOut:
        """The current version, or the one asked for."""
        found = await template_use_cases(state).get_template(principal, template_key, version)
        return to_out(found)

    @get("/", summary="List templates", responses=responses(400, 401, 503))
    async def list_(
        self,
        state: State,
        principal: NamedDependency[Principal],
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE, description="Page size.")] = 50,
        cursor: Annotated[
            str | None,
            QueryParameter(description="`next_cursor` of the previous page.", max_length=200),
        ] = None,
    ) -> TemplatePage:
        """The current version of every template, by key."""
        page = await template_use_cases(state).list_templates(principal, limit=limit, cursor=cursor)
        return TemplatePage([to_out(t) for t in page.items], page.next_cursor)

    @delete(
        "/{template_key:str}",
        summary="Delete a template",
        responses=responses(400, 401, 404, 503),
    )
    async def delete_(
        self, state: State, principal: NamedDependency[Principal], template_key: TemplateKey
    ) -> None:
        """Every version is hidden; a later save continues the version numbers."""
        await template_use_cases(state).delete_template(principal, template_key)

    @post(
        "/{template_key:str}/preview",
        status_code=200,
        summary="Render a template",
        before_request=require_json(envelope=1),
        responses=responses(400, 401, 404, 413, 415, 422, 503),
    )
    async def preview(
        self,
        state: State,
        principal: NamedDependency[Principal],
        template_key: TemplateKey,
        data: JSONBody[PreviewInput],
    ) -> PreviewOut:
        """Render each channel with the data and recipient; a 422 names a missing variable."""
        return await template_use_cases(state).preview_template(principal, template_key, data)
