"""The dashboard in a real browser: Playwright driving the system Chromium against `herald
serve` subprocesses, with SMS going to a Twilio stand-in. Screenshots go to
test-artifacts/dashboard/ (look at them: they are how the pages really render)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    async_playwright,
    expect,
)
from tests.dashboard.conftest import (
    BASE,
    PASSWORD,
    USER,
    Rows,
    dashboard_env,
    db_counts,
)
from tests.notifications.conftest import new_key
from tests.support.process import ROOT, HeraldProcess
from tests.support.standin import Answer, TwilioStandIn, accept
from tests.support.waiting import eventually

from herald.logging import mask_address

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
LIVE_TIMEOUT_MS = 15_000

pytestmark = [
    pytest.mark.process,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="needs the system Chromium (apt-get install chromium)"
    ),
]

Start = Callable[..., HeraldProcess]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        await browser.close()


class Tab:
    """A page, its console errors (a CSP violation or a script error fails the test), and
    screenshots."""

    def __init__(self, page: Page, herald: HeraldProcess) -> None:
        self.page = page
        self.url = herald.url + BASE
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} ({message.location.get('url')})")

    async def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    async def sign_in(self, screenshot: str | None = None) -> None:
        await self.page.goto(self.url + "/")
        await expect(self.page).to_have_url(f"{self.url}/login?next={BASE}")
        await self.page.fill('input[name="username"]', USER)
        await self.page.fill('input[name="password"]', PASSWORD)
        if screenshot:
            await self.shot(screenshot)
        await self.page.click('button[type="submit"]')
        await expect(self.page.locator("h1")).to_have_text("Queues")

    def count(self, queue: str, name: str) -> Locator:
        return self.page.locator(f'#queue-{queue} dd[data-count="{name}"]')

    async def counts(self, queue: str) -> dict[str, int]:
        cells = self.page.locator(f"#queue-{queue} dd[data-count]")
        names = [await cell.get_attribute("data-count") for cell in await cells.all()]
        values = [int(text) for text in await cells.all_inner_texts()]
        return dict(zip([str(n) for n in names], values, strict=True))


OpenTab = Callable[[HeraldProcess], Awaitable[Tab]]


@pytest.fixture
async def tab(browser: Browser) -> AsyncIterator[OpenTab]:
    """Opens tabs on a Herald; at the end, fails the test if any page logged an error."""
    context = await browser.new_context(viewport={"width": 1360, "height": 900})
    tabs: list[Tab] = []

    async def open_tab(herald: HeraldProcess) -> Tab:
        opened = Tab(await context.new_page(), herald)
        tabs.append(opened)
        return opened

    yield open_tab
    await context.close()
    for opened in tabs:
        assert opened.errors == [], opened.errors


async def send_sms(herald: HeraldProcess, key: str, to: str = "+447911123456") -> str:
    async with httpx.AsyncClient(base_url=herald.url, timeout=5) as client:
        response = await client.post(
            "/v1/notifications",
            json={"channel": "sms", "to": to, "body": "Your code is 123456"},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def wait_status(rows: Rows, notification_id: str, status: str) -> None:
    async def reached() -> bool:
        return await rows.status_of(uuid.UUID(notification_id)) == status

    await eventually(reached, what=f"{notification_id} to be {status}")


@pytest.fixture
def standin() -> Iterator[TwilioStandIn]:
    server = TwilioStandIn().start()
    yield server
    server.stop()


async def test_sign_in_and_see_a_queues_counts_match_the_database_live(
    herald: Start, tab: OpenTab, rows: Rows
) -> None:
    for status, n in {
        "sent": 3,
        "delivered": 1,
        "failed": 2,
        "cancelled": 1,
        "scheduled": 2,
    }.items():
        for _ in range(n):
            if status == "failed":
                await rows.failed("email", error="smtp 550: mailbox unavailable")
            else:
                await rows.add("email", status)
    server = herald(**dashboard_env())
    page = await tab(server)
    await page.sign_in(screenshot="01-login")

    assert await page.counts("email") == await db_counts(rows, "email")
    assert await page.counts("email") == {
        "due": 0, "scheduled": 2, "in_progress": 0, "sent": 4, "failed": 2, "cancelled": 1,
    }  # fmt: skip
    await expect(page.page.locator("#queue-email .badge.running")).to_be_visible()
    # The consumers: this process, from its heartbeat.
    await expect(page.page.locator("#queue-email .consumers tbody tr")).to_have_count(1)

    # Live: a delivery elsewhere shows up without a reload.
    key = await new_key("browser")
    await send_sms(server, key)
    await expect(page.count("sms", "sent")).to_have_text("1", timeout=LIVE_TIMEOUT_MS)
    await page.shot("02-overview")
    assert await page.counts("sms") == await db_counts(rows, "sms")


async def test_open_a_failed_notification_see_its_error_retry_and_watch_it_become_sent(
    herald: Start, tab: OpenTab, rows: Rows
) -> None:
    def invalid_number_first(token: str, n: int) -> Answer:
        if n == 1:
            body = {
                "code": 21211,
                "message": "The 'To' number +447911123456 is not a valid phone number.",
                "status": 400,
            }
            return 400, body, {}
        return accept(token, n)

    standin = TwilioStandIn(respond=invalid_number_first).start()
    try:
        server = herald(**dashboard_env(), **standin.env())
        key = await new_key("browser")
        notification_id = await send_sms(server, key)
        await wait_status(rows, notification_id, "failed")

        page = await tab(server)
        await page.sign_in()
        await expect(page.count("sms", "failed")).to_have_text("1")
        await page.count("sms", "failed").locator("a").click()
        await expect(page.page.locator("h1")).to_contain_text("Notifications · sms · failed")
        await page.shot("03-failed-list")
        await page.page.click(f'tr[data-id="{notification_id}"] a')

        # The provider quoted the number; the dashboard shows it masked there too.
        await expect(page.page.locator("[data-error]")).to_contain_text(
            f"twilio 21211: The 'To' number {mask_address('+447911123456')} is not a valid"
        )
        assert "+447911123456" not in await page.page.content()
        await expect(page.page.locator('[data-event="failed"]')).to_contain_text("twilio 21211")
        await page.shot("04-failed-notification")

        await page.page.click('button[data-action="retry"]')
        await expect(page.page.locator(".notice")).to_contain_text("Queued again")
        await expect(page.page.locator("#notification")).to_have_attribute(
            "data-status", "sent", timeout=LIVE_TIMEOUT_MS
        )
        await expect(page.page.locator("[data-provider-message-id]")).to_contain_text("SM")
        await expect(page.page.locator('[data-event="queued"]').nth(1)).to_contain_text(
            f"retried from the dashboard by {USER}"
        )
        await page.shot("05-retried-and-sent")
        assert standin.sends()[notification_id] == 2
        assert await rows.status_of(uuid.UUID(notification_id)) == "sent"
    finally:
        standin.stop()


async def test_pause_a_queue_and_see_deliveries_stop_then_resume_and_see_them_go(
    herald: Start, tab: OpenTab, rows: Rows, standin: TwilioStandIn
) -> None:
    server = herald(**dashboard_env(), **standin.env())
    key = await new_key("browser")
    page = await tab(server)
    await page.sign_in()

    await page.page.click('#queue-sms button[data-action="pause"]')
    await expect(page.page.locator(".notice")).to_contain_text("Paused")
    await expect(page.page.locator("#queue-sms .badge.paused")).to_be_visible()
    assert await rows.fetch("SELECT queue, paused_by FROM paused_queues") == [("sms", USER)]

    await asyncio.sleep(0.6)  # every process follows within half a second
    ids = [await send_sms(server, key, to=f"+4479111234{i:02d}") for i in range(3)]
    await expect(page.count("sms", "due")).to_have_text("3", timeout=LIVE_TIMEOUT_MS)
    started = time.monotonic()
    while time.monotonic() - started < 2:
        assert standin.sends() == {}, "delivered while paused"
        await asyncio.sleep(0.1)
    assert {await rows.status_of(uuid.UUID(i)) for i in ids} == {"queued"}
    await page.shot("06-paused")

    await page.page.click('#queue-sms button[data-action="resume"]')
    await expect(page.page.locator("#queue-sms .badge.running")).to_be_visible()
    await expect(page.count("sms", "sent")).to_have_text("3", timeout=LIVE_TIMEOUT_MS)
    await expect(page.count("sms", "due")).to_have_text("0")
    assert set(standin.sends()) == set(ids)
    assert {await rows.status_of(uuid.UUID(i)) for i in ids} == {"sent"}
    await page.shot("07-resumed")


async def test_a_read_only_user_cannot_act(herald: Start, tab: OpenTab, rows: Rows) -> None:
    failed = await rows.failed(
        "sms", error="twilio 21610: Attempt to send to unsubscribed recipient"
    )
    await rows.add("sms", "scheduled")
    server = herald(**dashboard_env(DASHBOARD_READ_ONLY="true"))
    page = await tab(server)
    await page.sign_in()

    await expect(page.page.locator(".topbar .badge")).to_have_text("read-only")
    await expect(page.page.locator("[data-action]")).to_have_count(0)
    await expect(page.count("sms", "failed")).to_have_text("1")
    await page.page.goto(f"{page.url}/notifications/{failed}")
    await expect(page.page.locator("[data-error]")).to_contain_text("twilio 21610")
    await expect(page.page.locator("[data-action]")).to_have_count(0)
    await page.shot("08-read-only")

    # Even a hand-made POST with a valid token is refused.
    token = await page.page.locator('input[name="csrf_token"]').first.get_attribute("value")
    for path in ("/queues/sms/pause", f"/notifications/{failed}/retry"):
        response = await page.page.request.post(page.url + path, form={"csrf_token": token or ""})
        assert response.status == 403, path
    assert await rows.fetch("SELECT queue FROM paused_queues") == []
    assert await rows.status_of(failed) == "failed"
