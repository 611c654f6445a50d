"""The queue dashboard: every queue and notification in the browser, and actions on them.

Server-rendered (Jinja, with htmx polling for the live parts; everything served by Herald, no
CDN, no build step), mounted at `DASHBOARD_PATH` when the API is on and `DASHBOARD_USERNAME`
is set. See `auth` for sign-in, sessions and CSRF, `overview` for the shared overview, and
`service` for the queries and actions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog
from litestar import Request, Response, Router
from litestar.exceptions import HTTPException
from litestar.static_files import create_static_files_router

from herald.api.rest.problems import from_any
from herald.config import Settings
from herald.dashboard import actions, messages, pages, templates_pages
from herald.dashboard.auth import (
    NotSignedIn,
    dashboard_of,
    handle_not_signed_in,
    login,
    login_page,
    logout,
    require_csrf,
    require_session,
)
from herald.dashboard.rendering import SECURITY_HEADERS
from herald.dashboard.state import Dashboard
from herald.errors import HeraldError

log = structlog.get_logger()

STATIC = Path(__file__).parent / "static"


def handle_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Errors on dashboard routes as an HTML page, with the status and wording the API's
    problem details would have (outages and bugs are classified and logged there)."""
    problem = from_any(exc)
    status, title, detail = problem.status_code, problem.title or "Error", problem.detail
    dashboard = dashboard_of(request)
    session = getattr(request.state, "dashboard_session", None)
    return dashboard.renderer.response(
        "error.html",
        status_code=status,
        title=title,
        detail=detail,
        user=session.user if session else None,
        csrf=session.csrf if session else "",
        read_only=dashboard.read_only,
    )


def _security_headers(response: Response[Any]) -> Response[Any]:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def dashboard_routers(settings: Settings) -> list[Router]:
    """The dashboard's routers, or none (with a warning) when no user is configured.

    Raises `ValueError` naming DASHBOARD_PASSWORD_HASH when it is missing or malformed.
    """
    if not settings.dashboard_username:
        log.warning(
            "dashboard.disabled",
            detail="DASHBOARD_USERNAME is empty, so the dashboard is not mounted; set it and "
            "DASHBOARD_PASSWORD_HASH (from `herald dashboard hash-password`) to turn it on",
        )
        return []
    dashboard = Dashboard.from_settings(settings)
    router = Router(
        path=dashboard.base,
        route_handlers=[
            login_page,
            login,
            logout,
            *pages.route_handlers,
            *messages.route_handlers,
            *templates_pages.route_handlers,
            *actions.route_handlers,
        ],
        guards=[require_session, require_csrf],
        # Every type the app maps (its problem details) is mapped here too, to HTML.
        exception_handlers={
            NotSignedIn: handle_not_signed_in,
            HeraldError: handle_error,
            HTTPException: handle_error,
            Exception: handle_error,
        },
        after_request=_security_headers,
        opt={"dashboard": dashboard},
        include_in_schema=False,
    )
    static = create_static_files_router(
        path=f"{dashboard.base}/static",
        directories=[STATIC],
        name="dashboard:static",
        include_in_schema=False,
        opt={"dashboard": dashboard},
    )
    log.info(
        "dashboard.mounted",
        path=dashboard.base,
        user=settings.dashboard_username,
        read_only=settings.dashboard_read_only,
    )
    return [router, static]


__all__ = ["dashboard_routers"]
