"""The admin page (/admin) in a real Chromium against a real chatd, PostgreSQL and n8n sink:
strict CSP, token sign-in, live queue and dead letters, retry and purge, transcripts, downloads,
accessibility (axe-core), a phone's width, and screenshots in build/screenshots/admin*.png.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
from playwright.sync_api import BrowserContext, Page, expect

from chatd.db.pool import Pool
from chatd.http.routes_web import ADMIN_CSP
from tests.browser import BrowserThread, axe_source
from tests.chat import Session, new_session, send
from tests.conftest import make_settings, start_chatd
from tests.integration.test_delivery import Pipeline, open_pipeline
from tests.sink import Reply, Status

TOKEN = "admin-page-token-0123456789abcdefghij"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
DESKTOP = {"width": 1280, "height": 1000}
PHONE = {"width": 375, "height": 812}
MIN_CELL_PX = 120  # narrower, a table cell breaks its words a syllable a line
XSS = '<img src=x onerror="window.__xss=1">'
# Chromium logs every 4xx answer to fetch() as a console error; a wrong token is one on purpose.
EXPECTED_401 = "the server responded with a status of 401"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def ops(nursery: trio.Nursery, database_url: str) -> AsyncIterator[Pipeline]:
    pipe = await open_pipeline(nursery, database_url, admin={"token": TOKEN})
    pipe.sink.behave(Reply("Happy to help."))
    yield pipe
    pipe.chatd.stop.set()


async def chat(pipe: Pipeline, content: str, **session: Any) -> tuple[Session, str]:
    async with pipe.chatd.client() as client:
        s = await new_session(client, **session)
        message_id = (await send(client, s, content)).json()["messageId"]
    return s, message_id


async def dead_letter(pipe: Pipeline, content: str) -> tuple[Session, str]:
    pipe.sink.behave(Status(400, b'{"message": "Bad request"}'))  # refused: dead at once
    s, message_id = await chat(pipe, content)
    await pipe.wait_job(message_id, "dead")
    return s, message_id


async def open_admin(
    browser: BrowserThread, url: str, viewport: dict[str, int] = DESKTOP
) -> tuple[BrowserContext, Page, str]:
    ctx, page = await browser.new_page(viewport=viewport, accept_downloads=True)

    def go() -> str:
        response = page.goto(f"{url}/admin")
        assert response is not None
        assert response.status == 200
        return str(response.headers["content-security-policy"])

    return ctx, page, await browser.run(go)


def sign_in(page: Page, token: str) -> None:
    expect(page.get_by_test_id("token-input")).to_be_focused()  # keyboard: type, then Enter
    page.keyboard.type(token)
    page.keyboard.press("Enter")


def unexpected_errors(page: Page) -> list[str]:
    errors: list[str] = page.errors  # type: ignore[attr-defined]
    return [e for e in errors if EXPECTED_401 not in e]


async def test_the_page_loads_under_its_csp_and_a_wrong_token_shows_the_form_again(
    browser: BrowserThread, ops: Pipeline
) -> None:
    ctx, page, csp = await open_admin(browser, ops.chatd.url)

    def wrong_then_right() -> None:
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        expect(page.get_by_test_id("auth-error")).to_be_hidden()
        sign_in(page, TOKEN[:-1] + "x")
        expect(page.get_by_test_id("auth-error")).to_contain_text("Wrong token")
        expect(page.get_by_test_id("token-input")).to_be_visible()
        expect(page.get_by_test_id("queue-depth")).to_be_hidden()
        assert page.evaluate("sessionStorage.length") == 0
        page.get_by_test_id("token-input").fill(TOKEN)
        page.get_by_test_id("token-submit").click()
        expect(page.get_by_test_id("queue-depth")).to_have_text("0")
        expect(page.get_by_test_id("auth-error")).to_be_hidden()
        page.reload()  # the token is kept for this tab
        expect(page.get_by_test_id("queue-depth")).to_have_text("0")
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_test_id("token-input")).to_be_visible()
        assert page.evaluate("sessionStorage.length") == 0

    await browser.run(wrong_then_right)
    assert csp == ADMIN_CSP
    assert "unsafe-inline" not in csp
    assert unexpected_errors(page) == []  # the CSP refused nothing
    await browser.run(ctx.close)


async def test_after_too_many_wrong_tokens_the_page_says_when_to_try_again(
    browser: BrowserThread, nursery: trio.Nursery, database_url: str
) -> None:
    pipe = await open_pipeline(
        nursery,
        database_url,
        admin={"token": TOKEN},
        server={"operator_auth_failures_max": 2, "operator_auth_failure_window_seconds": 60},
    )
    ctx, page, _ = await open_admin(browser, pipe.chatd.url)

    def guess_then_locked_out() -> None:
        for guess in ("first-guess", "second-guess"):
            page.get_by_test_id("token-input").fill(guess)
            page.get_by_test_id("token-submit").click()
            expect(page.get_by_test_id("auth-error")).to_contain_text("Wrong token")
        page.get_by_test_id("token-input").fill(TOKEN)  # right, but this address is held back
        page.get_by_test_id("token-submit").click()
        expect(page.get_by_test_id("auth-error")).to_contain_text(
            re.compile(r"Too many wrong tokens from this address\. Try again in \d+ s\.")
        )
        expect(page.get_by_test_id("token-input")).to_be_visible()
        expect(page.get_by_test_id("queue-depth")).to_be_hidden()

    await browser.run(guess_then_locked_out)
    assert [e for e in unexpected_errors(page) if "status of 429" not in e] == []
    await browser.run(ctx.close)
    pipe.chatd.stop.set()


async def test_dead_letter_retry_from_the_page_delivers_and_transcript_shows(
    browser: BrowserThread, ops: Pipeline
) -> None:
    _, first = await chat(ops, "Where is my order?", guestEmail="ann@shop.example")
    await ops.wait_job(first, "completed")
    refused_session, refused = await dead_letter(ops, f"Please retry me {XSS}")
    ops.sink.behave(Reply("Delivered on the second try."))
    ctx, page, _ = await open_admin(browser, ops.chatd.url)

    def until_retried() -> None:
        sign_in(page, TOKEN)
        expect(page.get_by_test_id("queue-depth")).to_have_text("0")
        expect(page.get_by_test_id("throughput-chart").locator("svg rect")).not_to_have_count(0)
        expect(page.get_by_test_id("webhook-health")).to_contain_text("Status")
        expect(page.get_by_test_id("error-row")).to_have_count(1)
        expect(page.get_by_test_id("error-row")).to_contain_text("Please retry me")
        letter = page.get_by_test_id("dead-letter")
        expect(letter).to_have_count(1)
        expect(letter).to_contain_text(f"Please retry me {XSS}")  # as text, not as markup
        assert letter.locator("img").count() == 0
        letter.get_by_test_id("dead-retry").click()
        expect(page.get_by_test_id("dead-letter")).to_have_count(0)

    await browser.run(until_retried)
    await ops.wait_job(refused, "completed")
    assert ops.sink.requests[-1].json["messageId"] == refused
    messages = await ops.wait_messages(refused_session, 3)
    assert messages[0]["status"] == "delivered"

    def transcript() -> None:
        row = page.get_by_test_id("session-row").filter(has_text=refused_session.id[:8])
        row.get_by_role("button").click()
        shown = page.get_by_test_id("transcript")
        expect(shown).to_contain_text(f"Please retry me {XSS}")
        expect(shown).to_contain_text("Delivered on the second try.")
        assert shown.locator("img").count() == 0
        expect(page.get_by_role("heading", name="Transcript")).to_be_focused()
        assert page.evaluate("window.__xss") is None

    await browser.run(transcript)
    assert unexpected_errors(page) == []
    await browser.run(ctx.close)


async def test_a_transcript_renders_bot_replies_as_markdown_and_shoppers_text_as_typed(
    browser: BrowserThread, ops: Pipeline
) -> None:
    reply = (
        "**Trail X** is *waterproof*:\n\n- sizes 36-47\n- `Gore-Tex` lining\n\n"
        f"See [the guide](https://shop.example/guide). [Not this](javascript:window.__xss=1) {XSS}"
    )
    ops.sink.behave(Reply(reply))
    shopper = "Is **Trail X** <b>waterproof</b>?"
    session, message_id = await chat(ops, shopper)
    await ops.wait_job(message_id, "completed")
    ctx, page, _ = await open_admin(browser, ops.chatd.url)

    def transcript() -> dict[str, Any]:
        sign_in(page, TOKEN)
        row = page.get_by_test_id("session-row").filter(has_text=session.id[:8])
        row.get_by_role("button").click()
        bot = page.get_by_test_id("transcript").locator("li.bot .content")
        expect(bot.locator("strong")).to_have_text("Trail X")
        page.wait_for_timeout(100)  # an <img onerror> would have run by now
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.get_by_test_id("transcript").screenshot(path=str(SCREENSHOTS / "admin-markdown.png"))
        return {
            "tags": bot.locator("*").evaluate_all("es => es.map(e => e.tagName.toLowerCase())"),
            "hrefs": bot.locator("a").evaluate_all("as => as.map(a => [a.href, a.target, a.rel])"),
            "bot": bot.inner_text(),
            "user": page.get_by_test_id("transcript").locator("li.user .content").inner_text(),
            "xss": page.evaluate("window.__xss"),
        }

    seen = await browser.run(transcript)
    assert seen["tags"] == ["p", "strong", "em", "ul", "li", "li", "code", "p", "a"]
    assert seen["hrefs"] == [["https://shop.example/guide", "_blank", "noopener noreferrer"]]
    assert "Not this" in seen["bot"]
    assert XSS in seen["bot"]  # markup stays text
    assert seen["user"] == shopper  # the shopper's text as typed: no Markdown
    assert seen["xss"] is None
    assert unexpected_errors(page) == []  # the CSP let /markdown.js load
    await browser.run(ctx.close)


async def test_purge_needs_a_second_click_and_retry_all_empties_the_list(
    browser: BrowserThread, ops: Pipeline
) -> None:
    _, purged = await dead_letter(ops, "purge me")
    _, kept = await dead_letter(ops, "retry me")
    ops.sink.behave(Reply("ok"))
    ctx, page, _ = await open_admin(browser, ops.chatd.url)

    def purge() -> None:
        sign_in(page, TOKEN)
        row = page.get_by_test_id("dead-letter").filter(has_text="purge me")
        button = row.get_by_test_id("dead-purge")
        button.click()
        expect(button).to_have_text("Confirm purge")
        expect(page.get_by_test_id("dead-letter")).to_have_count(2)
        button.click()
        expect(page.get_by_test_id("dead-letter")).to_have_count(1)

    await browser.run(purge)
    async with ops.chatd.services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM chat_webhook_queue WHERE message_id = %s", [purged]
        )
        assert await cur.fetchone() == {"n": 0}

    def retry_all() -> None:
        page.get_by_test_id("dead-retry-all").click()
        expect(page.get_by_test_id("dead-letter")).to_have_count(0)
        expect(page.get_by_test_id("dead-retry-all")).to_be_disabled()

    await browser.run(retry_all)
    await ops.wait_job(kept, "completed")
    await browser.run(ctx.close)


async def test_session_search_and_transcript_downloads(
    browser: BrowserThread, ops: Pipeline
) -> None:
    ann, first = await chat(ops, "Hello from Ann", guestEmail="ann@shop.example")
    bob, second = await chat(ops, "Hello from Bob", guestEmail="bob@shop.example")
    await ops.wait_job(first, "completed")
    await ops.wait_job(second, "completed")
    ctx, page, _ = await open_admin(browser, ops.chatd.url)

    def search_and_download() -> dict[str, Any]:
        sign_in(page, TOKEN)
        expect(page.get_by_test_id("session-row")).to_have_count(2)
        page.get_by_label("Search by session id, user id or email").fill("bob@")
        expect(page.get_by_test_id("session-row")).to_have_count(1)
        expect(page.get_by_test_id("session-row")).to_contain_text("bob@shop.example")
        page.get_by_test_id("session-row").click()
        expect(page.get_by_test_id("transcript")).to_contain_text("Hello from Bob")
        with page.expect_download() as json_download:
            page.get_by_role("button", name="Download JSON").click()
        with page.expect_download() as text_download:
            page.get_by_role("button", name="Download text").click()
        as_json, as_text = json_download.value, text_download.value
        return {
            "json_name": as_json.suggested_filename,
            "json": Path(as_json.path()).read_text(),
            "text_name": as_text.suggested_filename,
            "text": Path(as_text.path()).read_text(),
        }

    got = await browser.run(search_and_download)
    assert got["json_name"] == f"chat-{bob.id}.json"
    assert json.loads(got["json"])["session"]["id"] == bob.id
    assert got["text_name"] == f"chat-{bob.id}.txt"
    assert "Shopper: Hello from Bob" in got["text"]
    assert ann.id not in got["text"]
    assert unexpected_errors(page) == []
    await browser.run(ctx.close)


async def test_axe_finds_no_serious_violations_and_a_screenshot(
    browser: BrowserThread, ops: Pipeline
) -> None:
    for n in range(3):
        _, message_id = await chat(ops, f"Question {n}: where is order #10{n}?")
        await ops.wait_job(message_id, "completed")
    await dead_letter(ops, "Can I change the delivery address?")
    ops.sink.behave(Reply("ok"))
    axe = await trio.to_thread.run_sync(axe_source)
    ctx, page, _ = await open_admin(browser, ops.chatd.url)

    def audit() -> list[Any]:
        page.get_by_test_id("token-input").wait_for()
        signed_out = page.evaluate(axe + "\n;axe.run(document)")
        sign_in(page, TOKEN)
        expect(page.get_by_test_id("dead-letter")).to_have_count(1)
        expect(page.get_by_test_id("session-row")).to_have_count(4)
        page.get_by_test_id("session-row").first.get_by_role("button").click()
        expect(page.get_by_test_id("transcript").locator("li")).not_to_have_count(0)
        signed_in = page.evaluate("axe.run(document)")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "admin.png"), full_page=True)
        return [signed_out, signed_in]

    runs = await browser.run(audit)
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]])
        for run in runs
        for v in run["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == []
    assert (SCREENSHOTS / "admin.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert unexpected_errors(page) == []
    await browser.run(ctx.close)


async def test_with_admin_closed_the_page_says_how_to_open_it(
    browser: BrowserThread, nursery: trio.Nursery, database_url: str
) -> None:
    pipe = await open_pipeline(nursery, database_url)
    ctx, page, _ = await open_admin(browser, pipe.chatd.url)

    def closed() -> None:
        sign_in(page, "anything")
        expect(page.get_by_test_id("auth-error")).to_contain_text("CHATD_ADMIN__TOKEN")

    await browser.run(closed)
    await browser.run(ctx.close)
    pipe.chatd.stop.set()


# Where every visible button and table cell of the page is, and how wide the page is.
MEASURE = """() => {
  const shown = (e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden";
  const box = (e) => e.getBoundingClientRect();
  return {
    viewport: document.documentElement.clientWidth,
    pageWidth: document.documentElement.scrollWidth,
    buttons: [...document.querySelectorAll("button")].filter(shown).map((b) =>
      ({ name: b.getAttribute("aria-label") || b.textContent.trim(), left: box(b).left, right: box(b).right })),
    cells: [...document.querySelectorAll("td")].filter(shown).map((c) =>
      ({ text: c.textContent.trim().slice(0, 40), width: box(c).width })),
  };
}"""


async def test_on_a_phone_nothing_overflows_and_every_button_is_in_reach(
    browser: BrowserThread, ops: Pipeline
) -> None:
    _, first = await chat(ops, "Where is my order #1042? It was due on Monday.")
    await ops.wait_job(first, "completed")
    await dead_letter(ops, "Can I change the delivery address of order #1042, please?")
    ops.sink.behave(Reply("ok"))
    axe = await trio.to_thread.run_sync(axe_source)
    ctx, page, _ = await open_admin(browser, ops.chatd.url, PHONE)

    def signed_in() -> tuple[dict[str, Any], Any]:
        sign_in(page, TOKEN)
        expect(page.get_by_test_id("dead-letter")).to_have_count(1)
        expect(page.get_by_test_id("error-row")).to_have_count(1)
        expect(page.get_by_test_id("session-row")).to_have_count(2)
        page.get_by_test_id("session-row").first.get_by_role("button").click()
        expect(page.get_by_test_id("transcript").locator("li")).not_to_have_count(0)
        page.evaluate("window.scrollTo(0, 0)")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "admin-phone.png"), full_page=True)
        return page.evaluate(MEASURE), page.evaluate(axe + "\n;axe.run(document)")

    layout, audit = await browser.run(signed_in)
    assert layout["viewport"] == PHONE["width"]
    assert layout["pageWidth"] <= layout["viewport"]  # no sideways scrolling of the page
    names = [b["name"] for b in layout["buttons"]]
    assert any(n.startswith("Retry: ") for n in names)
    assert any(n.startswith("Purge: ") for n in names)
    for button in layout["buttons"]:
        assert button["left"] >= 0, button
        assert button["right"] <= layout["viewport"], button
    assert len(layout["cells"]) >= 10
    for cell in layout["cells"]:
        assert cell["width"] >= MIN_CELL_PX, cell
    serious = [v["id"] for v in audit["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == []
    assert unexpected_errors(page) == []
    await browser.run(ctx.close)


async def test_in_demo_mode_the_page_says_the_demo_bot_answers(
    browser: BrowserThread, nursery: trio.Nursery, database_url: str, pool: Pool
) -> None:
    settings = make_settings(database_url, admin={"token": TOKEN}, queue={"dispatch": True})
    chatd = await start_chatd(nursery, settings, pool)
    ctx, page, _ = await open_admin(browser, chatd.url)

    def demo() -> None:
        sign_in(page, TOKEN)
        health = page.get_by_test_id("webhook-health")
        expect(health).to_contain_text("the built-in demo bot (no n8n.webhook_url set)")
        expect(health).not_to_contain_text("n8n at")

    await browser.run(demo)
    await browser.run(ctx.close)
    chatd.stop.set()


async def test_with_n8n_configured_the_page_shows_its_url_without_secrets(
    browser: BrowserThread, nursery: trio.Nursery, database_url: str
) -> None:
    url = "https://bot:hunter2@n8n.shop.example:5678/webhook/chat?token=s3cret#frag"
    pipe = await open_pipeline(
        nursery, database_url, admin={"token": TOKEN}, n8n={"webhook_url": url}
    )
    ctx, page, _ = await open_admin(browser, pipe.chatd.url)

    def configured() -> str:
        sign_in(page, TOKEN)
        health = page.get_by_test_id("webhook-health")
        expect(health).to_contain_text("n8n at https://n8n.shop.example:5678/webhook/chat")
        return health.inner_text()

    shown = await browser.run(configured)
    for secret in ("bot", "hunter2", "s3cret", "token", "frag", "demo bot"):
        assert secret not in shown
    await browser.run(ctx.close)
    pipe.chatd.stop.set()
