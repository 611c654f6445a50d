"""The dashboard's actions: retry, retry all failed, cancel, pause, resume, delete history.

Each is a POST with the session's CSRF token, refused in read-only mode, that calls the use
case as an operator (`Principal.for_operator`) and answers with a redirect to a page showing
the result (post/redirect/get, so reloading never repeats an action).
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import structlog
from litestar import Request, post
from litestar.datastructures import State
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect

from herald.auth.keys import Principal
from herald.dashboard.auth import current_session, dashboard_of, require_writable
from herald.dashboard.pages import resources_of

log = structlog.get_logger()


def action(path: str) -> post:
    """A POST action: refused in read-only mode (the router's guards check session and CSRF)."""
    return post(path, guards=[require_writable], include_in_schema=False, status_code=303)


def _operator(request: Request[Any, Any, State]) -> Principal:
    return Principal.for_operator(current_session(request).user)


@action("/notifications/{notification_id:uuid}/retry")
async def retry(
    request: Request[Any, Any, State], notification_id: FromPath[uuid.UUID]
) -> Redirect:
    """Queue a failed notification again, due now, with a fresh budget of attempts."""
    dashboard = dashboard_of(request)
    operator = _operator(request)
    await resources_of(request).use_cases.retry_notification(operator, notification_id)
    dashboard.overview.invalidate()
    log.info("dashboard.retried", notification_id=str(notification_id), user=operator.name)
    target = dashboard.url(f"/notifications/{notification_id}", notice="retried")
    return Redirect(target, status_code=303)


@action("/notifications/{notification_id:uuid}/cancel")
async def cancel(
    request: Request[Any, Any, State], notification_id: FromPath[uuid.UUID]
) -> Redirect:
    """Cancel a scheduled, queued or retrying notification (409 once a provider has it)."""
    dashboard = dashboard_of(request)
    operator = _operator(request)
    await resources_of(request).use_cases.cancel_notification(operator, notification_id)
    dashboard.overview.invalidate()
    log.info("dashboard.cancelled", notification_id=str(notification_id), user=operator.name)
    target = dashboard.url(f"/notifications/{notification_id}", notice="cancelled")
    return Redirect(target, status_code=303)


@action("/queues/{queue:str}/retry-failed")
async def retry_failed(request: Request[Any, Any, State], queue: FromPath[str]) -> Redirect:
    """Queue again the queue's failed notifications, at most RETRY_ALL_LIMIT per click."""
    dashboard = dashboard_of(request)
    operator = _operator(request)
    count = await resources_of(request).use_cases.retry_failed_in_queue(operator, queue)
    dashboard.overview.invalidate()
    log.info("dashboard.retried_all", queue=queue, count=count, user=operator.name)
    target = dashboard.url("/", notice="retried_all", n=count, queue=queue)
    return Redirect(target, status_code=303)


async def _set_paused(request: Request[Any, Any, State], queue: str, *, paused: bool) -> Redirect:
    dashboard = dashboard_of(request)
    operator = _operator(request)
    use_cases = resources_of(request).use_cases
    if paused:
        await use_cases.pause_queue(operator, queue)
    else:
        await use_cases.resume_queue(operator, queue)
    dashboard.overview.invalidate()
    log.info(
        "dashboard.queue_paused" if paused else "dashboard.queue_resumed",
        queue=queue,
        user=operator.name,
    )
    notice = "paused" if paused else "resumed"
    return Redirect(dashboard.url("/", notice=notice, queue=queue), status_code=303)


@action("/queues/{queue:str}/pause")
async def pause(request: Request[Any, Any, State], queue: FromPath[str]) -> Redirect:
    """Every replica stops picking from the queue within a second (kept across restarts)."""
    return await _set_paused(request, queue, paused=True)


@action("/queues/{queue:str}/resume")
async def resume(request: Request[Any, Any, State], queue: FromPath[str]) -> Redirect:
    return await _set_paused(request, queue, paused=False)


class HistoryForm(msgspec.Struct):
    days: int  # csrf_token, also in the form, is checked by the router's guard


@action("/history/delete")
async def delete_history(
    request: Request[Any, Any, State], data: URLEncodedBody[HistoryForm]
) -> Redirect:
    """Delete notifications finished more than `days` ago, with their events."""
    dashboard = dashboard_of(request)
    operator = _operator(request)
    result = await resources_of(request).use_cases.delete_history(operator, data.days)
    dashboard.overview.invalidate()
    log.info("dashboard.history_deleted", days=data.days, count=result.deleted, user=operator.name)
    notice = "deleted_more" if result.more_left else "deleted"
    return Redirect(dashboard.url("/", notice=notice, n=result.deleted), status_code=303)


route_handlers = [retry, cancel, retry_failed, pause, resume, delete_history]
