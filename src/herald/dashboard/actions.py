"""The dashboard's actions: retry, retry all failed, cancel, pause, resume, delete history.

Each is a POST with the session's CSRF token, refused in read-only mode, that commits and
then (for retries) enqueues the delivery jobs, and answers with a redirect to a page showing
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

from herald.dashboard.auth import current_session, dashboard_of, require_writable
from herald.dashboard.pages import check_queue, resources_of
from herald.dashboard.service import (
    DELETE_BATCH,
    DELETE_LIMIT,
    cancel_notification,
    delete_history_batch,
    history_cutoff,
    retry_failed_in_queue,
    retry_notification,
)
from herald.errors import BadRequest
from herald.notifications.service import enqueue_deliveries
from herald.queue.control import pause_queue, resume_queue

log = structlog.get_logger()


def action(path: str) -> post:
    """A POST action: refused in read-only mode (the router's guards check session and CSRF)."""
    return post(path, guards=[require_writable], include_in_schema=False, status_code=303)


@action("/notifications/{notification_id:uuid}/retry")
async def retry(
    request: Request[Any, Any, State], notification_id: FromPath[uuid.UUID]
) -> Redirect:
    """Queue a failed notification again, due now, with a fresh budget of attempts."""
    dashboard = dashboard_of(request)
    resources = resources_of(request)
    user = current_session(request).user
    async with resources.session_maker() as session:
        notification = await retry_notification(
            session, notification_id, user=user, budget=resources.settings.max_attempts
        )
        await session.commit()
    await enqueue_deliveries(resources.jobs, [notification])
    dashboard.overview.invalidate()
    log.info("dashboard.retried", notification_id=str(notification_id), user=user)
    target = dashboard.url(f"/notifications/{notification_id}", notice="retried")
    return Redirect(target, status_code=303)


@action("/notifications/{notification_id:uuid}/cancel")
async def cancel(
    request: Request[Any, Any, State], notification_id: FromPath[uuid.UUID]
) -> Redirect:
    """Cancel a scheduled, queued or retrying notification (409 once a provider has it)."""
    dashboard = dashboard_of(request)
    user = current_session(request).user
    async with resources_of(request).session_maker() as session:
        await cancel_notification(session, notification_id, user=user)
        await session.commit()
    dashboard.overview.invalidate()
    log.info("dashboard.cancelled", notification_id=str(notification_id), user=user)
    target = dashboard.url(f"/notifications/{notification_id}", notice="cancelled")
    return Redirect(target, status_code=303)


@action("/queues/{queue:str}/retry-failed")
async def retry_failed(request: Request[Any, Any, State], queue: FromPath[str]) -> Redirect:
    """Queue again the queue's failed notifications, at most RETRY_ALL_LIMIT per click."""
    dashboard = dashboard_of(request)
    resources = resources_of(request)
    user = current_session(request).user
    check_queue(queue)
    async with resources.session_maker() as session:
        retried = await retry_failed_in_queue(
            session, queue, user=user, budget=resources.settings.max_attempts
        )
        await session.commit()
    await enqueue_deliveries(resources.jobs, retried)
    dashboard.overview.invalidate()
    log.info("dashboard.retried_all", queue=queue, count=len(retried), user=user)
    target = dashboard.url("/", notice="retried_all", n=len(retried), queue=queue)
    return Redirect(target, status_code=303)


async def _set_paused(request: Request[Any, Any, State], queue: str, *, paused: bool) -> Redirect:
    dashboard = dashboard_of(request)
    user = current_session(request).user
    check_queue(queue)
    async with resources_of(request).session_maker() as session:
        if paused:
            await pause_queue(session, queue, by=user)
        else:
            await resume_queue(session, queue)
        await session.commit()
    dashboard.overview.invalidate()
    log.info(
        "dashboard.queue_paused" if paused else "dashboard.queue_resumed", queue=queue, user=user
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
    """Delete notifications finished (sent, delivered, failed, cancelled) more than `days`
    ago, with their events; in batches, each its own transaction, at most DELETE_LIMIT."""
    if not 1 <= data.days <= 3650:
        raise BadRequest("days must be between 1 and 3650")
    dashboard = dashboard_of(request)
    user = current_session(request).user
    cutoff = history_cutoff(data.days)
    deleted = 0
    more = False
    while deleted < DELETE_LIMIT:
        async with resources_of(request).session_maker() as session:
            batch = await delete_history_batch(
                session, cutoff, min(DELETE_BATCH, DELETE_LIMIT - deleted)
            )
            await session.commit()
        deleted += batch
        if batch < DELETE_BATCH:
            break
    else:
        more = True
    dashboard.overview.invalidate()
    log.info("dashboard.history_deleted", days=data.days, count=deleted, user=user)
    notice = "deleted_more" if more else "deleted"
    return Redirect(dashboard.url("/", notice=notice, n=deleted), status_code=303)


route_handlers = [retry, cancel, retry_failed, pause, resume, delete_history]
