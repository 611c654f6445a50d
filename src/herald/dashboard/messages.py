"""The dashboard's message pages: recent messages, and one message with its notifications.

They read through the message use cases as an operator (every API key's messages), as the
actions act through the notification use cases; nothing here writes.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath

from herald.auth.keys import Principal
from herald.dashboard.auth import current_session, dashboard_of
from herald.dashboard.pages import PAGE_SIZE, page_context, resources_of


def _operator(request: Request[Any, Any, State]) -> Principal:
    return Principal.for_operator(current_session(request).user)


@get("/messages", include_in_schema=False)
async def messages_page(request: Request[Any, Any, State]) -> Response[str]:
    """The newest messages: template and version, recipient, each notification's status, and
    the channels skipped with their reason."""
    dashboard = dashboard_of(request)
    found = await resources_of(request).messages.list_messages(_operator(request), limit=PAGE_SIZE)
    return dashboard.renderer.response("messages.html", messages=found, **page_context(request))


@get("/messages/{message_id:uuid}", include_in_schema=False)
async def message_page(
    request: Request[Any, Any, State], message_id: FromPath[uuid.UUID]
) -> Response[str]:
    """One message: its route, its notifications (each links to its own page), skips, the
    channels fallback would try next, and a quiet-hours deferral."""
    dashboard = dashboard_of(request)
    found = await resources_of(request).messages.get_message(_operator(request), message_id)
    return dashboard.renderer.response("message.html", m=found, **page_context(request))


route_handlers = [messages_page, message_page]
