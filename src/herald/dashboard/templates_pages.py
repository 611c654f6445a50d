"""The dashboard's template pages: every API key's templates, and one with a live preview.

Templates belong to an API key (an operator has none of its own), so the dashboard reads
them through the template use cases *as that key*, read-only: the list, the current version,
and the preview (`preview_template`, the same rendering a message does). The preview is a GET
(`data` as a JSON object, `locale`): it renders, it never stores anything.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath, QueryParameter
from sqlalchemy import select

from herald.auth.keys import Principal
from herald.dashboard.auth import dashboard_of
from herald.dashboard.pages import page_context, resources_of
from herald.db.models import ApiKey
from herald.errors import HeraldError, NotFound
from herald.messages.template_input import PreviewInput

MAX_KEYS = 100


async def _keys(request: Request[Any, Any, State]) -> list[ApiKey]:
    async with resources_of(request).session_maker() as session:
        found = await session.scalars(select(ApiKey).order_by(ApiKey.name).limit(MAX_KEYS))
        return list(found.all())


async def _as_key(request: Request[Any, Any, State], api_key_id: uuid.UUID) -> Principal:
    async with resources_of(request).session_maker() as session:
        key = await session.get(ApiKey, api_key_id)
    if key is None:
        raise NotFound(f"no API key {api_key_id}")
    return Principal(key.id, key.name)


@get("/templates", include_in_schema=False)
async def templates_page(request: Request[Any, Any, State]) -> Response[str]:
    """Every API key's templates (their current versions)."""
    dashboard = dashboard_of(request)
    templates = resources_of(request).templates
    by_key = []
    for key in await _keys(request):
        page = await templates.list_templates(Principal(key.id, key.name), limit=200)
        by_key.append((key, page.items))
    return dashboard.renderer.response("templates.html", by_key=by_key, **page_context(request))


@get("/templates/{api_key_id:uuid}/{template_key:str}", include_in_schema=False)
async def template_page(
    request: Request[Any, Any, State],
    api_key_id: FromPath[uuid.UUID],
    template_key: FromPath[str],
    values: Annotated[str | None, QueryParameter(name="data", max_length=32_000)] = None,
    locale: Annotated[str | None, QueryParameter(max_length=35)] = None,
) -> Response[str]:
    """One template's current version, and its preview with the data given."""
    dashboard = dashboard_of(request)
    principal = await _as_key(request, api_key_id)
    templates = resources_of(request).templates
    template = await templates.get_template(principal, template_key)
    preview = error = None
    if values is not None:
        try:
            decoded = json.loads(values or "{}")
            item = msgspec.convert({"data": decoded, "locale": locale or None}, PreviewInput)
            preview = await templates.preview_template(principal, template_key, item)
        except (ValueError, msgspec.ValidationError) as exc:
            error = f"data must be a JSON object: {exc}"
        except HeraldError as exc:
            error = "; ".join(f"{p.field}: {p.message}" for p in exc.problems) or exc.detail
    return dashboard.renderer.response(
        "template.html",
        t=template,
        api_key_id=api_key_id,
        key_name=principal.name,
        data=values if values is not None else "{}",
        locale=locale or "",
        preview=preview,
        preview_error=error,
        **page_context(request),
    )


route_handlers = [templates_page, template_page]
