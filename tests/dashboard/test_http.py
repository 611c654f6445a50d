"""The dashboard over HTTP, in-process against the real Postgres and Redis."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from litestar import Litestar
from tests.conftest import make_settings, running_app
from tests.dashboard.conftest import (
    BASE,
    PASSWORD,
    USER,
    Rows,
    csrf_of,
    dashboard_settings,
    db_counts,
    session_csrf,
    sign_in,
)
from tests.support.waiting import eventually

from herald.app import create_app
from herald.dashboard.state import Dashboard
from herald.logging import mask_address
from herald.notifications.transitions import retry_failed_in_queue

QUEUE_SECTION = re.compile(r'<section class="card queue" id="queue-(\w+)".*?</section>', re.S)
COUNT = re.compile(r'data-count="(\w+)"><a [^>]*>(\d+)</a>')


def overview_counts(html: str) -> dict[str, dict[str, int]]:
    return {
        match.group(1): {name: int(value) for name, value in COUNT.findall(match.group(0))}
        for match in QUEUE_SECTION.finditer(html)
    }


def listed_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-id="([0-9a-f-]+)">', html)


@pytest.fixture
async def app_client() -> AsyncIterator[tuple[Litestar, httpx.AsyncClient]]:
    async with running_app(dashboard_settings()) as (app, client):
        yield app, client


@pytest.fixture
async def client(app_client: tuple[Litestar, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_client[1]


@pytest.fixture
async def signed_in(client: httpx.AsyncClient) -> httpx.AsyncClient:
    response = await sign_in(client)
    assert response.status_code == 303, response.text
    return client


def dashboard_of(app: Litestar) -> Dashboard:
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if "dashboard" in handler.opt:
                return handler.opt["dashboard"]  # type: ignore[no-any-return]
    raise AssertionError("no dashboard route")


def dashboard_routes(app: Litestar) -> list[tuple[str, str]]:
    """(method, concrete path) of every dashboard route but the login form and static files."""
    found: list[tuple[str, str]] = []
    for route in app.routes:
        path = route.path
        if not path.startswith(BASE) or path.startswith((f"{BASE}/login", f"{BASE}/static")):
            continue
        concrete = (
            re.sub(r"\{\w+:uuid\}", str(uuid.uuid4()), path)
            .replace("{queue:str}", "sms")
            .replace("{unknown:path}", "no/such/page")
        )
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            found.append((method, concrete))
    return found


# -- signing in ----------------------------------------------------------------------------


async def test_every_dashboard_url_without_a_session_redirects_or_is_401(
    app_client: tuple[Litestar, httpx.AsyncClient],
) -> None:
    app, client = app_client
    routes = dashboard_routes(app)
    assert len(routes) >= 14, routes
    for method, path in routes:
        response = await client.request(method, path)
        if method == "GET":
            assert response.status_code == 303, (method, path, response.status_code)
            assert response.headers["location"].startswith(f"{BASE}/login?next=")
            partial = await client.get(path, headers={"HX-Request": "true"})
            assert partial.status_code == 401, path
            assert partial.headers["hx-redirect"] == f"{BASE}/login"
        else:
            assert response.status_code == 401, (method, path, response.status_code)
        assert "jane@" not in response.text


async def test_the_login_redirect_comes_back_to_the_page_asked_for(
    client: httpx.AsyncClient,
) -> None:
    first = await client.get(f"{BASE}/notifications?queue=sms")
    assert first.headers["location"] == f"{BASE}/login?next=/dashboard/notifications%3Fqueue%3Dsms"
    page = await client.get(first.headers["location"])
    form = {
        "username": USER,
        "password": PASSWORD,
        "csrf_token": csrf_of(page.text),
        "next": "/dashboard/notifications?queue=sms",
    }
    response = await client.post(f"{BASE}/login", data=form)
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/notifications?queue=sms"


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/v1/notifications", "/dashboardx"]
)
async def test_login_never_redirects_off_the_dashboard(
    client: httpx.AsyncClient, target: str
) -> None:
    page = await client.get(f"{BASE}/login")
    form = {"username": USER, "password": PASSWORD, "csrf_token": csrf_of(page.text)}
    response = await client.post(f"{BASE}/login", data={**form, "next": target})
    assert response.status_code == 303
    assert response.headers["location"] == BASE


async def test_session_cookie_is_signed_httponly_samesite_and_scoped(
    client: httpx.AsyncClient,
) -> None:
    response = await sign_in(client)
    cookie = next(c for c in response.headers.get_list("set-cookie") if "herald_dashboard=" in c)
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/dashboard" in cookie
    assert "Secure" not in cookie  # plain http here; https below

    value = client.cookies.get("herald_dashboard", path="/dashboard")
    assert value is not None
    payload, signature = value.split(".")
    tampered = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
    client.cookies.set("herald_dashboard", f"{tampered}.{signature}", path="/dashboard")
    assert (await client.get(f"{BASE}/")).status_code == 303


async def test_session_cookie_is_secure_over_https() -> None:
    async with running_app(dashboard_settings()) as (app, _):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://herald") as client:
            response = await sign_in(client)
    cookie = next(c for c in response.headers.get_list("set-cookie") if "herald_dashboard=" in c)
    assert "Secure" in cookie


async def test_a_session_signed_with_another_key_is_refused(client: httpx.AsyncClient) -> None:
    async with running_app(dashboard_settings(dashboard_secret_key="another")) as (app, _):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://herald") as other:
            await sign_in(other)
            stolen = other.cookies.get("herald_dashboard", path="/dashboard")
    assert stolen is not None
    client.cookies.set("herald_dashboard", stolen, path="/dashboard")
    assert (await client.get(f"{BASE}/")).status_code == 303


async def test_a_wrong_password_is_refused(client: httpx.AsyncClient) -> None:
    response = await sign_in(client, password="hunter2-not-the-password")
    assert response.status_code == 401
    assert "Wrong username or password" in response.text
    assert client.cookies.get("herald_dashboard", path="/dashboard") is None
    assert (await client.get(f"{BASE}/")).status_code == 303
    # What is logged (and what is not) is checked on a real process: see test_process.py.


async def test_login_without_its_csrf_token_is_refused(client: httpx.AsyncClient) -> None:
    await client.get(f"{BASE}/login")
    form = {"username": USER, "password": PASSWORD, "csrf_token": "forged", "next": BASE}
    response = await client.post(f"{BASE}/login", data=form)
    assert response.status_code == 403
    assert client.cookies.get("herald_dashboard", path="/dashboard") is None


async def test_sign_out_ends_the_session(signed_in: httpx.AsyncClient) -> None:
    token = await session_csrf(signed_in)
    response = await signed_in.post(f"{BASE}/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert (await signed_in.get(f"{BASE}/")).status_code == 303


# -- CSRF and read-only --------------------------------------------------------------------


async def test_a_post_without_the_csrf_token_is_refused(
    signed_in: httpx.AsyncClient, rows: Rows
) -> None:
    for form in ({}, {"csrf_token": "wrong"}):
        response = await signed_in.post(f"{BASE}/queues/sms/pause", data=form)
        assert response.status_code == 403, response.text
        assert "security token" in response.text
    assert await rows.fetch("SELECT queue FROM paused_queues") == []

    token = await session_csrf(signed_in)
    response = await signed_in.post(f"{BASE}/queues/sms/pause", data={"csrf_token": token})
    assert response.status_code == 303
    assert await rows.fetch("SELECT queue, paused_by FROM paused_queues") == [("sms", USER)]
    # The header works too (for scripts and htmx).
    resumed = await signed_in.post(f"{BASE}/queues/sms/resume", headers={"X-CSRF-Token": token})
    assert resumed.status_code == 303
    assert await rows.fetch("SELECT queue FROM paused_queues") == []


async def test_a_read_only_user_sees_no_actions_and_cannot_act(rows: Rows) -> None:
    failed = await rows.failed()
    scheduled = await rows.add("sms", "scheduled")
    async with running_app(dashboard_settings(dashboard_read_only=True)) as (_, client):
        await sign_in(client)
        overview = await client.get(f"{BASE}/")
        assert "read-only" in overview.text
        for path in (
            f"{BASE}/",
            f"{BASE}/notifications/{failed}",
            f"{BASE}/notifications/{scheduled}",
        ):
            page = await client.get(path)
            assert page.status_code == 200
            assert "data-action" not in page.text, path
            assert "/retry" not in page.text
        token = csrf_of(overview.text)  # the sign-out form still has one
        for path in (
            f"{BASE}/queues/sms/pause",
            f"{BASE}/notifications/{failed}/retry",
            f"{BASE}/notifications/{scheduled}/cancel",
            f"{BASE}/queues/sms/retry-failed",
        ):
            response = await client.post(path, data={"csrf_token": token})
            assert response.status_code == 403, path
            assert "read-only" in response.text
        response = await client.post(
            f"{BASE}/history/delete", data={"csrf_token": token, "days": "1"}
        )
        assert response.status_code == 403
    assert await rows.status_of(failed) == "failed"
    assert await rows.status_of(scheduled) == "scheduled"
    assert await rows.fetch("SELECT queue FROM paused_queues") == []


# -- what it shows -------------------------------------------------------------------------


async def test_overview_counts_equal_the_databases(rows: Rows) -> None:
    now = datetime.now(UTC)
    layout = {
        "email": {"sent": 3, "delivered": 1, "failed": 2, "cancelled": 1, "sending": 1},
        "sms": {"queued": 2, "scheduled": 2, "sent": 1, "failed": 1},
        "push": {"retrying": 1, "sending": 2},
        "whatsapp": {},
    }
    for channel, statuses in layout.items():
        for status, count in statuses.items():
            for _ in range(count):
                await rows.add(channel, status)
    # Waiting for later: a retry in backoff and a queued one with a future due time.
    await rows.add("push", "retrying", next_attempt_at=now + timedelta(minutes=5))
    await rows.add("sms", "queued", next_attempt_at=now + timedelta(minutes=5))

    # API role only: no worker or reconciler moves these rows while they are counted.
    async with running_app(dashboard_settings(enable_workers=False)) as (_, client):
        await sign_in(client)
        shown = overview_counts((await client.get(f"{BASE}/partials/overview")).text)

    expected = {
        channel: await db_counts(rows, channel) for channel in ("email", "sms", "push", "whatsapp")
    }
    assert shown == expected
    assert shown["sms"] == {
        "due": 2, "scheduled": 3, "in_progress": 0, "sent": 1, "failed": 1, "cancelled": 0,
    }  # fmt: skip


async def test_overview_shows_pause_state_consumers_and_the_last_hour(
    signed_in: httpx.AsyncClient, rows: Rows
) -> None:
    now = datetime.now(UTC)
    for minutes_ago in (1, 1, 5):
        at = now - timedelta(minutes=minutes_ago)
        await rows.add("email", "sent", created_at=at, updated_at=at, sent_at=at)
    at = now - timedelta(minutes=2)
    await rows.failed("email", created_at=at, updated_at=at)
    old = now - timedelta(hours=3)
    await rows.add("email", "sent", created_at=old, updated_at=old, sent_at=old)
    token = await session_csrf(signed_in)
    await signed_in.post(f"{BASE}/queues/push/pause", data={"csrf_token": token})

    async def overview() -> str | None:
        html = (await signed_in.get(f"{BASE}/partials/overview")).text
        # The in-process workers heartbeat every two seconds.
        return html if "pid " in html else None

    html = await eventually(overview, what="a consumer in the overview")
    sections = {m.group(1): m.group(0) for m in QUEUE_SECTION.finditer(html)}
    assert 'data-paused="true"' in sections["push"]
    assert 'data-paused="false"' in sections["email"]
    assert "3 sent · " in sections["email"]
    assert "1 failed" in sections["email"]
    assert sections["email"].count('<rect class="sent"') == 2  # two distinct minutes
    assert sections["email"].count('<rect class="failed"') == 1
    assert "unified" in sections["sms"]  # the role of this process, consuming every queue


async def test_one_overview_query_per_interval_whatever_the_number_of_tabs(
    app_client: tuple[Litestar, httpx.AsyncClient],
) -> None:
    app, client = app_client
    await sign_in(client)
    cache = dashboard_of(app).overview
    before = cache.loads
    responses = await asyncio.gather(*(client.get(f"{BASE}/partials/overview") for _ in range(20)))
    assert all(r.status_code == 200 for r in responses)
    assert cache.loads - before <= 1
    await asyncio.sleep(0.6)  # the interval (DASHBOARD_REFRESH_SECONDS=0.5) has passed
    await client.get(f"{BASE}/partials/overview")
    assert cache.loads - before <= 2


async def test_search_by_id_reference_or_recipient(
    signed_in: httpx.AsyncClient, rows: Rows
) -> None:
    target = await rows.add("email", "sent", reference="order-42", recipient="kate@example.com")
    await rows.add("email", "sent", reference="order-43", recipient="liam@example.com")
    await rows.add("sms", "sent", reference="order-44", recipient="+447911000042")

    for query, expected in (
        (str(target), [str(target)]),
        ("order-42", [str(target)]),
        ("kate@example.com", [str(target)]),
        ("KATE@example.com", []),  # recipients match exactly
        ("kate", []),
        (str(uuid.uuid4()), []),
    ):
        page = await signed_in.get(f"{BASE}/notifications", params={"q": query})
        assert page.status_code == 200
        assert listed_ids(page.text) == expected, query
    nul = await signed_in.get(f"{BASE}/notifications", params={"q": "order\x0042"})
    assert nul.status_code == 400
    page = await signed_in.get(f"{BASE}/notifications", params={"q": "+447911000042"})
    cells = re.findall(r"<td class=\"mono\" data-recipient>([^<]*)</td>", page.text)
    assert cells == [mask_address("+447911000042")]  # shown masked


async def test_list_filters_by_queue_and_status_newest_first(
    signed_in: httpx.AsyncClient, rows: Rows
) -> None:
    failed_sms = [await rows.failed("sms") for _ in range(3)]
    await rows.add("sms", "sent")
    await rows.failed("email")
    page = await signed_in.get(f"{BASE}/notifications", params={"queue": "sms", "status": "failed"})
    assert listed_ids(page.text) == [str(i) for i in reversed(failed_sms)]
    everything = await signed_in.get(f"{BASE}/notifications")
    assert len(listed_ids(everything.text)) == 5
    bad = await signed_in.get(f"{BASE}/notifications", params={"status": "lost"})
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("text/html")


async def test_pagination_walks_every_row_once_newest_first(
    signed_in: httpx.AsyncClient, rows: Rows
) -> None:
    same_instant = datetime.now(UTC) - timedelta(minutes=30)
    created = [await rows.add("push", "sent") for _ in range(95)]
    # Rows sharing a created_at are still ordered (by id) and never skipped or repeated.
    tied = [await rows.add("push", "sent", created_at=same_instant) for _ in range(10)]
    await rows.add("email", "sent")  # another queue: not listed

    seen: list[str] = []
    url: str | None = f"{BASE}/notifications?queue=push"
    pages = 0
    while url is not None:
        page = await signed_in.get(url)
        assert page.status_code == 200
        seen.extend(listed_ids(page.text))
        pages += 1
        match = re.search(r'<a href="([^"]+)" rel="next"', page.text)
        url = match.group(1).replace("&amp;", "&") if match else None
    assert pages == 3
    assert len(seen) == len(set(seen)) == 105
    assert set(seen) == {str(i) for i in created + tied}
    by_age = await rows.fetch(
        "SELECT id::text FROM notifications WHERE channel = 'push' ORDER BY created_at DESC, id DESC"
    )
    assert seen == [row[0] for row in by_age]


async def test_detail_shows_the_timeline_with_errors_and_masks_the_recipient(
    signed_in: httpx.AsyncClient, rows: Rows
) -> None:
    failed = await rows.failed(
        "sms", error="twilio 21211: The 'To' number +447911123456 is not valid.", priority="high"
    )
    sent = await rows.add(
        "email", "sent", provider="smtp", provider_message_id="<abc@mail.example>"
    )
    page = await signed_in.get(f"{BASE}/notifications/{failed}")
    assert page.status_code == 200
    masked = mask_address("+447911123456")
    assert f"twilio 21211: The &#39;To&#39; number {masked} is not valid." in page.text
    assert "+447911123456" not in page.text  # not even where the provider quoted it
    listed = await signed_in.get(f"{BASE}/notifications", params={"status": "failed"})
    assert masked in listed.text
    assert "+447911123456" not in listed.text
    assert mask_address("+447911123456") in page.text
    assert re.findall(r'data-event="(\w+)"', page.text) == ["queued", "sending", "failed"]
    assert ">high<" in page.text
    detail = await signed_in.get(f"{BASE}/partials/notifications/{sent}")
    assert "&lt;abc@mail.example&gt;" in detail.text
    assert "jane@example.com" not in detail.text
    for path in (f"/notifications/{uuid.uuid4()}", "/no/such/page"):
        missing = await signed_in.get(BASE + path)
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("text/html")


# -- actions -------------------------------------------------------------------------------


async def test_retry_queues_a_failed_notification_with_a_fresh_budget_and_it_is_sent(
    signed_in: httpx.AsyncClient, rows: Rows
) -> None:
    failed = await rows.failed("sms", attempts=5, max_attempts=5)
    token = await session_csrf(signed_in)
    response = await signed_in.post(
        f"{BASE}/notifications/{failed}/retry", data={"csrf_token": token}
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"{BASE}/notifications/{failed}?notice=retried"

    async def sent() -> bool:
        return await rows.status_of(failed) == "sent"

    await eventually(sent, what="the retried notification to be sent")  # by the log provider
    ((attempts, max_attempts, error),) = await rows.fetch(
        "SELECT attempts, max_attempts, error FROM notifications WHERE id = :id", id=failed
    )
    assert (attempts, max_attempts, error) == (6, 10, None)
    events = await rows.fetch(
        "SELECT status, detail FROM notification_events WHERE notification_id = :id ORDER BY id",
        id=failed,
    )
    assert ("queued", f"retried from the dashboard by {USER}") in events
    assert [status for status, _ in events][-3:] == ["queued", "sending", "sent"]

    again = await signed_in.post(f"{BASE}/notifications/{failed}/retry", data={"csrf_token": token})
    assert again.status_code == 409  # only failed ones can be retried
    assert "is sent" in again.text


async def test_retry_all_failed_shows_the_count_then_retries_them(
    signed_in: httpx.AsyncClient, rows: Rows
) -> None:
    failed = [await rows.failed("whatsapp") for _ in range(4)]
    other = await rows.failed("sms")
    confirm = await signed_in.get(f"{BASE}/queues/whatsapp/retry-failed")
    assert confirm.status_code == 200
    assert '<strong data-count="failed">4</strong>' in confirm.text
    assert "Retry 4 notifications" in confirm.text

    response = await signed_in.post(
        f"{BASE}/queues/whatsapp/retry-failed", data={"csrf_token": csrf_of(confirm.text)}
    )
    assert response.status_code == 303
    assert "notice=retried_all" in response.headers["location"]
    assert "n=4" in response.headers["location"]
    notice = await signed_in.get(response.headers["location"])
    assert "Queued 4 failed notifications of whatsapp again." in notice.text

    async def all_sent() -> bool:
        return all([await rows.status_of(i) == "sent" for i in failed])

    await eventually(all_sent, what="the retried whatsapp notifications to be sent")
    assert await rows.status_of(other) == "failed"
    unknown = await signed_in.get(f"{BASE}/queues/fax/retry-failed")
    assert unknown.status_code == 404


async def test_retry_all_is_bounded(signed_in: httpx.AsyncClient, rows: Rows) -> None:
    for _ in range(5):
        await rows.failed("push")
    async with rows.engine.begin() as connection:
        retried = await retry_failed_in_queue(connection, "push", 3, 5, "retried by t")
    assert len(retried) == 3
    assert (await rows.fetch("SELECT count(*) FROM notifications WHERE status = 'failed'"))[0][
        0
    ] == 2


async def test_cancel_a_scheduled_or_queued_one_but_not_a_sent_one(
    signed_in: httpx.AsyncClient, rows: Rows
) -> None:
    later = datetime.now(UTC) + timedelta(days=1)
    scheduled = await rows.add("email", "scheduled", next_attempt_at=later, send_at=later)
    sent = await rows.add("email", "sent")
    token = await session_csrf(signed_in)
    response = await signed_in.post(
        f"{BASE}/notifications/{scheduled}/cancel", data={"csrf_token": token}
    )
    assert response.status_code == 303
    assert await rows.status_of(scheduled) == "cancelled"
    events = await rows.fetch(
        "SELECT status, detail FROM notification_events WHERE notification_id = :id ORDER BY id",
        id=scheduled,
    )
    assert events[-1] == ("cancelled", f"cancelled from the dashboard by {USER}")
    refused = await signed_in.post(
        f"{BASE}/notifications/{sent}/cancel", data={"csrf_token": token}
    )
    assert refused.status_code == 409
    assert await rows.status_of(sent) == "sent"


async def test_delete_history_removes_only_old_finished_notifications(
    signed_in: httpx.AsyncClient, rows: Rows
) -> None:
    old = datetime.now(UTC) - timedelta(days=40)
    old_finished = [
        await rows.add("email", status, created_at=old, updated_at=old)
        for status in ("sent", "delivered", "failed", "cancelled")
    ]
    old_waiting = await rows.add("email", "scheduled", created_at=old, updated_at=old)
    recent = await rows.add("email", "sent")
    confirm = await signed_in.get(f"{BASE}/history", params={"days": 30})
    assert '<strong data-count="history">4</strong>' in confirm.text

    response = await signed_in.post(
        f"{BASE}/history/delete", data={"csrf_token": csrf_of(confirm.text), "days": "30"}
    )
    assert response.status_code == 303
    assert "n=4" in response.headers["location"]
    left = {row[0] for row in await rows.fetch("SELECT id FROM notifications")}
    assert left == {old_waiting, recent}
    orphans = await rows.fetch(
        "SELECT count(*) FROM notification_events WHERE notification_id = ANY(:ids)",
        ids=old_finished,
    )
    assert orphans == [(0,)]
    bad = await signed_in.post(
        f"{BASE}/history/delete", data={"csrf_token": csrf_of(confirm.text), "days": "0"}
    )
    assert bad.status_code == 400


# -- mounting ------------------------------------------------------------------------------


async def test_without_a_user_the_dashboard_is_not_mounted() -> None:
    settings = make_settings(dashboard_username="", enable_workers=False)
    app = create_app(settings)
    assert not any(route.path.startswith(BASE) for route in app.routes)
    async with running_app(settings) as (_, client):
        assert (await client.get(f"{BASE}/")).status_code == 404


@pytest.mark.parametrize(
    ("password_hash", "message"),
    [
        ("", "DASHBOARD_PASSWORD_HASH is required"),
        # refused by the settings class already, so `herald check` catches it too
        ("plain-text", "expected scrypt"),
        ("scrypt$3$8$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "DASHBOARD_PASSWORD_HASH is not valid"),
    ],
)
def test_a_missing_or_malformed_hash_stops_start_up(password_hash: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_app(dashboard_settings(dashboard_password_hash=password_hash))


async def test_mounted_at_a_configured_path() -> None:
    settings = dashboard_settings(dashboard_path="/ops/queues", enable_workers=False)
    async with running_app(settings) as (_, client):
        response = await client.get("/ops/queues/")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/ops/queues/login")
        assert (await client.get("/ops/queues/static/htmx.min.js")).status_code == 200


async def test_pages_forbid_framing_and_foreign_scripts(signed_in: httpx.AsyncClient) -> None:
    for path in (f"{BASE}/", f"{BASE}/login"):
        response = await signed_in.get(path, follow_redirects=True)
        assert response.headers["x-frame-options"] == "DENY"
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["cache-control"] == "no-store"
    htmx = await signed_in.get(f"{BASE}/static/htmx.min.js")
    assert htmx.status_code == 200
    assert "htmx" in htmx.text[:200]
