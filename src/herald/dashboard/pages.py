"""The dashboard's pages and the partials htmx polls to keep them live.

Every handler here only reads. The overview comes from the per-process cache (one query per
refresh interval, however many tabs poll); lists and details are read on every request.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath, QueryParameter

from herald.dashboard.auth import current_session, dashboard_of
from herald.dashboard.overview import Overview, load_overview
from herald.dashboard.queries import (
    QUEUES,
    count_failed,
    count_history,
    get_notification,
    history_cutoff,
    list_notifications,
)
from herald.dashboard.state import Dashboard
from herald.errors import InvalidInput, NotFound
from herald.notifications.use_cases import DELETE_LIMIT, RETRY_ALL_LIMIT
from herald.resources import Resources
from herald.vocabulary import CANCELLABLE, STATUSES

QUEUE_PATTERN = "^(" + "|".join(QUEUES) + ")$"
STATUS_PATTERN = "^(" + "|".join(STATUSES) + ")$"
PAGE_SIZE = 50

Queue = Annotated[str | None, QueryParameter(pattern=QUEUE_PATTERN)]
Status = Annotated[str | None, QueryParameter(pattern=STATUS_PATTERN)]
Search = Annotated[str | None, QueryParameter(name="q", max_length=320, pattern="^[^\\x00]*$")]
Cursor = Annotated[str | None, QueryParameter(max_length=200)]
Notice = Annotated[str | None, QueryParameter(max_length=40)]
Count = Annotated[int | None, QueryParameter(name="n", ge=0)]

_NOTICES = {
    "retried": "Queued again with a fresh budget of attempts.",
    "cancelled": "Cancelled.",
    "paused": "Paused: every process stops picking from {queue} within a second.",
    "resumed": "Resumed: {queue} is being delivered again.",
    "retried_all": "Queued {n} failed notifications of {queue} again.",
    "deleted": "Deleted {n} finished notifications and their events.",
    "deleted_more": "Deleted {n} finished notifications; more remain, delete again to go on.",
}


def resources_of(request: Request[Any, Any, State]) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


def notice_text(code: str | None, *, n: int | None = None, queue: str | None = None) -> str | None:
    template = _NOTICES.get(code or "")
    return template.format(n=n or 0, queue=queue or "the queue") if template else None


def page_context(request: Request[Any, Any, State], **extra: Any) -> dict[str, Any]:
    dashboard = dashboard_of(request)
    session = current_session(request)
    return {
        "user": session.user,
        "csrf": session.csrf,
        "read_only": dashboard.read_only,
        "notice": None,
        **extra,
    }


async def overview_of(request: Request[Any, Any, State], dashboard: Dashboard) -> Overview:
    resources = resources_of(request)
    return await dashboard.overview.get(
        lambda: load_overview(resources.session_maker, resources.redis)
    )


def check_queue(queue: str) -> str:
    if queue not in QUEUES:
        raise NotFound(f"no queue {queue!r}; the queues are {', '.join(QUEUES)}")
    return queue


@get("/", include_in_schema=False)
async def overview_page(
    request: Request[Any, Any, State],
    notice: Notice = None,
    n: Count = None,
    queue: Queue = None,
) -> Response[str]:
    """Every queue: counts, the last hour, paused or not, and the processes consuming it."""
    dashboard = dashboard_of(request)
    overview = await overview_of(request, dashboard)
    context = page_context(request, notice=notice_text(notice, n=n, queue=queue))
    return dashboard.renderer.response("overview.html", overview=overview, **context)


@get("/partials/overview", include_in_schema=False)
async def overview_partial(request: Request[Any, Any, State]) -> Response[str]:
    dashboard = dashboard_of(request)
    overview = await overview_of(request, dashboard)
    return dashboard.renderer.response("_overview.html", overview=overview, **page_context(request))


async def _list(
    request: Request[Any, Any, State],
    template: str,
    *,
    queue: str | None,
    status: str | None,
    search: str | None,
    cursor: str | None,
) -> Response[str]:
    dashboard = dashboard_of(request)
    search = (search or "").strip() or None
    if search and "\x00" in search:
        raise InvalidInput("The search contains a NUL character; no notification can match it.")
    async with resources_of(request).session_maker() as session:
        page = await list_notifications(
            session, queue=queue, status=status, search=search, cursor=cursor, limit=PAGE_SIZE
        )
    filters = {"queue": queue, "status": status, "q": search}
    return dashboard.renderer.response(
        template,
        page=page,
        filters=filters,
        cursor=cursor,
        queues=QUEUES,
        statuses=STATUS_PATTERN[2:-2].split("|"),
        list_url=dashboard.url("/notifications", **filters),
        rows_url=dashboard.url("/partials/notifications", **filters),
        next_url=dashboard.url("/notifications", **filters, cursor=page.next_cursor)
        if page.next_cursor
        else None,
        **page_context(request),
    )


@get("/notifications", include_in_schema=False)
async def notifications_page(
    request: Request[Any, Any, State],
    queue: Queue = None,
    status: Status = None,
    search: Search = None,
    cursor: Cursor = None,
) -> Response[str]:
    """Notifications by queue and status, newest first; search by id, reference or recipient."""
    return await _list(
        request, "notifications.html", queue=queue, status=status, search=search, cursor=cursor
    )


@get("/partials/notifications", include_in_schema=False)
async def notifications_partial(
    request: Request[Any, Any, State],
    queue: Queue = None,
    status: Status = None,
    search: Search = None,
    cursor: Cursor = None,
) -> Response[str]:
    return await _list(
        request, "_rows.html", queue=queue, status=status, search=search, cursor=cursor
    )


async def _detail(
    request: Request[Any, Any, State], notification_id: uuid.UUID, template: str, **extra: Any
) -> Response[str]:
    dashboard = dashboard_of(request)
    async with resources_of(request).session_maker() as session:
        notification = await get_notification(session, notification_id)
    return dashboard.renderer.response(
        template,
        n=notification,
        cancellable=notification.status in CANCELLABLE,
        **page_context(request, **extra),
    )


@get("/notifications/{notification_id:uuid}", include_in_schema=False)
async def notification_page(
    request: Request[Any, Any, State],
    notification_id: FromPath[uuid.UUID],
    notice: Notice = None,
) -> Response[str]:
    """One notification: recipient (masked), timings, attempts and every event with its
    error."""
    return await _detail(request, notification_id, "notification.html", notice=notice_text(notice))


@get("/partials/notifications/{notification_id:uuid}", include_in_schema=False)
async def notification_partial(
    request: Request[Any, Any, State], notification_id: FromPath[uuid.UUID]
) -> Response[str]:
    return await _detail(request, notification_id, "_notification.html")


@get("/queues/{queue:str}/retry-failed", include_in_schema=False)
async def confirm_retry_failed(
    request: Request[Any, Any, State], queue: FromPath[str]
) -> Response[str]:
    """How many would be retried, and a button to do it."""
    dashboard = dashboard_of(request)
    check_queue(queue)
    async with resources_of(request).session_maker() as session:
        failed = await count_failed(session, queue)
    return dashboard.renderer.response(
        "confirm_retry.html",
        queue=queue,
        failed=failed,
        limit=RETRY_ALL_LIMIT,
        **page_context(request),
    )


@get("/history", include_in_schema=False)
async def confirm_delete_history(
    request: Request[Any, Any, State],
    days: Annotated[int, QueryParameter(ge=1, le=3650)] = 30,
) -> Response[str]:
    """How many finished notifications are older than `days`, and a button to delete them."""
    dashboard = dashboard_of(request)
    async with resources_of(request).session_maker() as session:
        count = await count_history(session, history_cutoff(days))
    return dashboard.renderer.response(
        "confirm_delete.html", days=days, count=count, limit=DELETE_LIMIT, **page_context(request)
    )


@get("/{unknown:path}", include_in_schema=False)
async def no_such_page(unknown: FromPath[str]) -> None:
    """Anything else under the dashboard: behind the sign-in like every page, then a 404."""
    raise NotFound("There is no dashboard page at this address.")


route_handlers = [
    overview_page,
    overview_partial,
    notifications_page,
    notifications_partial,
    notification_page,
    notification_partial,
    confirm_retry_failed,
    confirm_delete_history,
    no_such_page,
]
