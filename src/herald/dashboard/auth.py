"""Signing in and out, and the guards every dashboard route passes.

Default deny: the session guard is on the dashboard's router, so a route is public only when
it says so (`opt={"public": True}`: the login page). A page asked for without a session
redirects to the login page; anything else (a POST, an htmx partial) is 401. Every POST also
needs the session's CSRF token, and actions are refused in read-only mode.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, cast
from urllib.parse import quote

import msgspec
import structlog
from litestar import Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.params import QueryParameter, URLEncodedBody
from litestar.response import Redirect

from herald.dashboard.security import SESSION_SECONDS, Session, tokens_match
from herald.dashboard.state import LOGIN_COOKIE, SESSION_COOKIE, Dashboard

log = structlog.get_logger()

_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class NotSignedIn(NotAuthorizedException):
    """No valid session: a redirect to the login page for a page, 401 for anything else."""


def dashboard_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Dashboard:
    return cast(Dashboard, connection.route_handler.opt["dashboard"])


def current_session(connection: ASGIConnection[Any, Any, Any, Any]) -> Session:
    return cast(Session, connection.state.dashboard_session)


async def require_session(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    if handler.opt.get("public"):
        return
    dashboard = dashboard_of(connection)
    session = dashboard.signer.verify(connection.cookies.get(SESSION_COOKIE))
    if session is None:
        raise NotSignedIn("Sign in to use the dashboard.")
    connection.state.dashboard_session = session


async def require_csrf(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Every unsafe request carries the session's token, in the form or in X-CSRF-Token."""
    if handler.opt.get("public") or connection.scope["method"] not in _UNSAFE_METHODS:  # type: ignore[typeddict-item]
        return
    token = connection.headers.get(CSRF_HEADER)
    if token is None:
        form = await cast(Request[Any, Any, Any], connection).form()
        value = form.get(CSRF_FIELD)
        token = value if isinstance(value, str) else None
    if not tokens_match(current_session(connection).csrf, token):
        log.warning("dashboard.csrf_refused", path=connection.url.path, client=_client(connection))
        raise PermissionDeniedException(
            "The form's security token is missing or out of date. Reload the page and try again."
        )


async def require_writable(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    if dashboard_of(connection).read_only:
        raise PermissionDeniedException("The dashboard is read-only (DASHBOARD_READ_ONLY).")


def _client(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    return connection.client.host if connection.client else None


def _masked_user(username: str) -> str:
    # A password typed into the user field must not end up in the log.
    return f"{username[:1]}***({len(username)} chars)" if username else ""


def _cookie_secure(request: Request[Any, Any, Any]) -> bool:
    return request.url.scheme == "https"


class LoginForm(msgspec.Struct):
    username: str = ""
    password: str = ""
    csrf_token: str = ""
    next: str = ""


def _login_page(
    dashboard: Dashboard,
    request: Request[Any, Any, State],
    *,
    next_url: str,
    error: str | None = None,
    status_code: int = 200,
    username: str = "",
) -> Response[str]:
    token = dashboard.signer.verify_token(request.cookies.get(LOGIN_COOKIE))
    fresh = token is None
    token = token or secrets.token_urlsafe(32)
    response = dashboard.renderer.response(
        "login.html",
        status_code=status_code,
        csrf=token,
        next_url=next_url,
        error=error,
        username=username,
        user=None,
    )
    if fresh:
        response.set_cookie(
            LOGIN_COOKIE,
            dashboard.signer.sign_token(token),
            max_age=3600,
            path=dashboard.base or "/",
            httponly=True,
            samesite="strict",
            secure=_cookie_secure(request),
        )
    return response


@get("/login", opt={"public": True}, include_in_schema=False)
async def login_page(
    request: Request[Any, Any, State],
    next_url: Annotated[str | None, QueryParameter(name="next", max_length=2000)] = None,
) -> Response[str] | Redirect:
    """The sign-in form (or straight on, for someone already signed in)."""
    dashboard = dashboard_of(request)
    target = dashboard.safe_next(next_url)
    if dashboard.signer.verify(request.cookies.get(SESSION_COOKIE)) is not None:
        return Redirect(target, status_code=303)
    return _login_page(dashboard, request, next_url=target)


@post("/login", opt={"public": True}, include_in_schema=False, status_code=303)
async def login(
    request: Request[Any, Any, State], data: URLEncodedBody[LoginForm]
) -> Response[str] | Redirect:
    """Check the credentials; on success set the session cookie and go where the user was
    going."""
    dashboard = dashboard_of(request)
    target = dashboard.safe_next(data.next)
    expected = dashboard.signer.verify_token(request.cookies.get(LOGIN_COOKIE))
    if expected is None or not tokens_match(expected, data.csrf_token):
        log.warning("dashboard.csrf_refused", path=request.url.path, client=_client(request))
        raise PermissionDeniedException(
            "The sign-in form's security token is missing or out of date. Reload the page."
        )
    if not await dashboard.credentials.check(data.username, data.password):
        log.warning(
            "dashboard.login_failed",
            username=_masked_user(data.username),
            known_user=data.username == dashboard.credentials.username,
            client=_client(request),
        )
        return _login_page(
            dashboard,
            request,
            next_url=target,
            error="Wrong username or password.",
            status_code=401,
            username=data.username,
        )
    cookie, _ = dashboard.signer.issue(dashboard.credentials.username)
    log.info("dashboard.login", user=dashboard.credentials.username, client=_client(request))
    response = Redirect(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=SESSION_SECONDS,
        path=dashboard.base or "/",
        httponly=True,
        samesite="lax",
        secure=_cookie_secure(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path=dashboard.base or "/")
    return response


@post("/logout", include_in_schema=False, status_code=303)
async def logout(request: Request[Any, Any, State]) -> Redirect:
    dashboard = dashboard_of(request)
    log.info("dashboard.logout", user=current_session(request).user, client=_client(request))
    response = Redirect(dashboard.url("/login"), status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=dashboard.base or "/")
    return response


def handle_not_signed_in(request: Request[Any, Any, Any], exc: NotSignedIn) -> Response[Any]:
    dashboard = dashboard_of(request)
    login_url = dashboard.url("/login")
    is_htmx = request.headers.get("hx-request") == "true"
    if request.method in ("GET", "HEAD") and not is_htmx:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Redirect(f"{login_url}?next={quote(here, safe='/')}", status_code=303)
    # htmx follows HX-Redirect, so a tab whose session ended lands on the login page.
    headers = {"HX-Redirect": login_url} if is_htmx else {}
    return dashboard.renderer.response(
        "error.html",
        status_code=401,
        headers=headers,
        title="Sign in required",
        detail=str(exc.detail),
        user=None,
    )
