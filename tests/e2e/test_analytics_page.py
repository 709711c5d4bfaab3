"""The analytics page (/admin/analytics) in a real Chromium against a real chatd and PostgreSQL:
its CSP, the admin token shared with /admin in the tab, the numbers of the API in the summary,
charts and tables, the periods (1d, 7d, 30d, custom), CSV downloads, accessibility (axe-core),
a phone's width, and screenshots in build/screenshots/analytics*.png."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from playwright.sync_api import BrowserContext, Page, expect

from chatd.db.pool import Pool
from chatd.http.routes_web import ADMIN_CSP
from chatd.settings import Settings
from tests.browser import BrowserThread, axe_source
from tests.conftest import RunningChatd, make_settings
from tests.integration.test_analytics import Seeded, seed

TOKEN = "analytics-page-token-0123456789abcdef"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
DESKTOP = {"width": 1280, "height": 1000}
PHONE = {"width": 375, "height": 812}
CHARTS = ("activity", "answer_time", "delivery", "csat", "ratings", "intents")
EXPECTED_401 = "the server responded with a status of 401"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, admin={"token": TOKEN})


@pytest.fixture
async def rows(pool: Pool) -> Seeded:
    """What the test inserted, counted by the test (per UTC day)."""
    return await seed(pool, datetime.now(UTC), 30, random.Random(3))


@pytest.fixture
async def seeded(chatd: RunningChatd, rows: Seeded) -> RunningChatd:
    return chatd


async def api(chatd: RunningChatd, **params: str) -> dict[str, Any]:
    async with chatd.client(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        response = await client.get("/api/admin/analytics", params={"tz": "UTC", **params})
    assert response.status_code == 200, response.text[:300]
    return dict(response.json())


async def open_page(
    browser: BrowserThread, url: str, viewport: dict[str, int] = DESKTOP
) -> tuple[BrowserContext, Page, str]:
    ctx, page = await browser.new_page(
        viewport=viewport, accept_downloads=True, timezone_id="UTC", locale="en-GB"
    )

    def go() -> str:
        response = page.goto(f"{url}/admin/analytics")
        assert response is not None
        assert response.status == 200
        return str(response.headers["content-security-policy"])

    return ctx, page, await browser.run(go)


def sign_in(page: Page) -> None:
    expect(page.get_by_test_id("token-input")).to_be_focused()
    page.keyboard.type(TOKEN)
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("chart-activity")).to_be_visible()


def errors(page: Page) -> list[str]:
    found: list[str] = page.errors  # type: ignore[attr-defined]
    return [e for e in found if EXPECTED_401 not in e]


def numbers(page: Page, chart: str) -> list[list[str]]:
    card = page.locator(f"[data-chart='{chart}']")
    if card.locator("details").get_attribute("open") is None:  # a refresh keeps it open
        card.locator("summary").click()
    rows = card.locator("tbody tr")
    return [r.split("\t") for r in rows.evaluate_all("rs => rs.map(r => r.innerText)")]


async def test_the_page_shows_the_inserted_numbers_for_each_period(
    browser: BrowserThread, seeded: RunningChatd, rows: Seeded
) -> None:
    week, month, day = (
        await api(seeded, range="7d"),
        await api(seeded, range="30d"),
        await api(seeded, range="1d"),
    )
    ctx, page, csp = await open_page(browser, seeded.url)

    def read() -> dict[str, Any]:
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.get_by_test_id("token-input").fill("wrong")
        page.get_by_test_id("token-submit").click()
        expect(page.get_by_test_id("auth-error")).to_contain_text("Wrong token")
        page.get_by_test_id("token-input").fill("")
        sign_in(page)
        seen: dict[str, Any] = {"week": page.locator("#sum-conversations").inner_text()}
        seen["week_rows"] = numbers(page, "activity")
        seen["charts"] = [page.get_by_test_id(f"chart-{c}").count() for c in CHARTS]
        page.get_by_role("button", name="30 days").click()
        expect(page.get_by_role("button", name="30 days")).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#sum-conversations")).to_have_text(
            f"{month['totals']['conversations']:,}"
        )
        seen["month_rows"] = len(numbers(page, "activity"))
        seen["month_ratings"] = numbers(page, "ratings")
        page.get_by_role("button", name="Last 24 hours").click()
        expect(page.get_by_test_id("period")).to_contain_text("per hour")
        seen["day_rows"] = len(numbers(page, "activity"))
        page.locator("#start").fill(week["series"][1]["start"][:10])
        page.locator("#end").fill(week["series"][3]["start"][:10])
        page.get_by_test_id("custom-apply").click()
        expect(page.get_by_role("button", name="7 days")).to_have_attribute("aria-pressed", "false")
        expect(page.get_by_test_id("period")).to_contain_text("per day")
        seen["custom_rows"] = numbers(page, "activity")
        page.reload()  # the token is kept for this tab
        expect(page.get_by_test_id("chart-activity")).to_be_visible()
        return seen

    seen = await browser.run(read)
    assert csp == ADMIN_CSP
    assert seen["week"] == f"{week['totals']['conversations']:,}"
    days = [p["start"][:10] for p in week["series"]]
    assert [int(r[1]) for r in seen["week_rows"]] == [rows.conversations[d] for d in days]
    assert [int(r[2]) for r in seen["week_rows"]] == [rows.messages[(d, "user")] for d in days]
    assert [int(r[3]) for r in seen["week_rows"]] == [rows.messages[(d, "bot")] for d in days]
    stars = {f"{v} {'star' if v == 1 else 'stars'}": 0 for v in range(1, 6)}
    for (_, value), n in rows.ratings.items():
        stars[f"{value} {'star' if value == 1 else 'stars'}"] += n
    assert {name: int(n) for name, n in seen["month_ratings"]} == stars
    assert seen["week"] == f"{sum(rows.conversations[d] for d in days):,}"
    assert seen["charts"] == [1] * len(CHARTS)
    assert seen["month_rows"] == len(month["series"]) == 30
    assert seen["day_rows"] == len(day["series"]) == 24
    assert [int(r[1]) for r in seen["custom_rows"]] == [
        p["conversations"] for p in week["series"][1:4]
    ]
    assert errors(page) == []
    await browser.run(ctx.close)


async def test_each_chart_downloads_its_csv(browser: BrowserThread, seeded: RunningChatd) -> None:
    week = await api(seeded, range="7d")
    ctx, page, _ = await open_page(browser, seeded.url)

    def download(chart: str) -> str:
        with page.expect_download() as started:
            page.get_by_test_id(f"csv-{chart}").click()
        return Path(started.value.path()).read_text()

    def all_of_them() -> dict[str, str]:
        sign_in(page)
        return {chart: download(chart) for chart in CHARTS}

    files = await browser.run(all_of_them)
    activity = list(csv.reader(io.StringIO(files["activity"])))
    assert activity[0][:2] == ["start", "conversations"]
    assert [int(r[1]) for r in activity[1:]] == [p["conversations"] for p in week["series"]]
    ratings = dict(list(csv.reader(io.StringIO(files["ratings"])))[1:])
    assert {k: int(v) for k, v in ratings.items()} == week["csat"]["distribution"]
    assert errors(page) == []
    await browser.run(ctx.close)


async def test_signed_in_on_admin_the_analytics_page_needs_no_token_again(
    browser: BrowserThread, seeded: RunningChatd
) -> None:
    ctx, page = await browser.new_page(viewport=DESKTOP)

    def admin_then_analytics() -> None:
        page.goto(f"{seeded.url}/admin")
        page.get_by_test_id("token-input").fill(TOKEN)
        page.get_by_test_id("token-submit").click()
        expect(page.get_by_test_id("queue-depth")).to_have_text("0")
        page.get_by_role("link", name="Analytics").click()
        expect(page.get_by_test_id("chart-activity")).to_be_visible()
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_test_id("token-input")).to_be_visible()
        page.get_by_role("link", name="Admin").click()
        expect(page.get_by_test_id("token-input")).to_be_visible()  # signed out there too

    await browser.run(admin_then_analytics)
    assert errors(page) == []
    await browser.run(ctx.close)


MEASURE = """() => ({
  viewport: document.documentElement.clientWidth,
  pageWidth: document.documentElement.scrollWidth,
  outside: [...document.querySelectorAll("button, svg, input")]
    .filter((e) => e.getClientRects().length > 0)
    .map((e) => e.getBoundingClientRect())
    .filter((r) => r.left < 0 || r.right > document.documentElement.clientWidth + 0.5).length,
})"""


@pytest.mark.parametrize(("viewport", "name"), [(DESKTOP, "analytics"), (PHONE, "analytics-phone")])
async def test_axe_finds_no_serious_violations_nothing_overflows_and_screenshots(
    browser: BrowserThread, seeded: RunningChatd, viewport: dict[str, int], name: str
) -> None:
    axe = await trio.to_thread.run_sync(axe_source)
    ctx, page, _ = await open_page(browser, seeded.url, viewport)

    def audit() -> tuple[list[Any], dict[str, Any]]:
        page.get_by_test_id("token-input").wait_for()
        signed_out = page.evaluate(axe + "\n;axe.run(document)")
        sign_in(page)
        page.get_by_role("button", name="30 days").click()
        expect(page.get_by_test_id("period")).to_contain_text("per day")
        page.locator("[data-chart='answer_time'] summary").click()
        signed_in = page.evaluate("axe.run(document)")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        return [signed_out, signed_in], page.evaluate(MEASURE)

    runs, layout = await browser.run(audit)
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]])
        for run in runs
        for v in run["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == []
    assert layout["pageWidth"] <= layout["viewport"]
    assert layout["outside"] == 0
    assert errors(page) == []
    await browser.run(ctx.close)


async def test_the_pages_files_are_served_under_the_admin_policy(seeded: RunningChatd) -> None:
    async with httpx.AsyncClient(base_url=seeded.url) as client:
        for path in ("/admin/analytics", "/analytics.js", "/analytics.css", "/admin-session.js"):
            response = await client.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-security-policy"] == ADMIN_CSP
