"""The widget's End chat and rating prompt in a real Chromium, on a shop's page under a strict
CSP, against a real chatd, PostgreSQL and n8n sink: the shopper ends the chat and rates it with
the keyboard, the rating is stored and reaches n8n as a signed event, a reload does not ask
again; a chat staff close is asked about at once; an expired chat is asked about when the widget
next loads, and the prompt can be dismissed. Screenshots in build/screenshots/widget-csat*.png."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from playwright.sync_api import Page, expect

from chatd.core.signing import standard_signature
from tests.browser import BrowserThread, axe_source
from tests.e2e.test_widget import MOBILE, SCREENSHOTS, SHOP, open_shop, open_widget, say
from tests.integration.test_delivery import SECRET, Pipeline, open_pipeline
from tests.sink import Reply

pytestmark = pytest.mark.timeout(120)
ADMIN_TOKEN = "csat-admin-token-0123456789abcdef"


@pytest.fixture
async def shop(nursery: trio.Nursery, database_url: str) -> AsyncIterator[Pipeline]:
    pipe = await open_pipeline(
        nursery,
        database_url,
        websocket={"allowed_origins": SHOP, "heartbeat_interval_seconds": 2},
        n8n={"timeout_seconds": 15},
        admin={"token": ADMIN_TOKEN},
    )
    pipe.sink.behave(Reply("Your order ships today."))
    yield pipe
    pipe.chatd.stop.set()


async def rows(pipe: Pipeline, sql: str) -> list[dict[str, Any]]:
    async with pipe.chatd.services.pool.connection() as conn:
        return list(await (await conn.execute(sql)).fetchall())


def chat(page: Page) -> None:
    open_widget(page)
    say(page, "Where is my order?")
    expect(page.get_by_test_id("message-bot")).to_contain_text("Your order ships today.")


def unsent_prompt(page: Page) -> None:
    """Nothing asks again: no prompt, no End chat (a new chat has not begun)."""
    page.get_by_test_id("chat-bubble").click()
    expect(page.get_by_test_id("message-input")).to_be_focused()
    page.wait_for_timeout(1000)  # what the widget would ask chatd, it has asked by now
    expect(page.get_by_test_id("csat")).to_be_hidden()
    expect(page.get_by_role("button", name="End chat")).to_be_hidden()


async def test_the_shopper_ends_the_chat_and_rates_it_with_the_keyboard(
    browser: BrowserThread, shop: Pipeline
) -> None:
    axe = await trio.to_thread.run_sync(axe_source)
    ctx, page = await open_shop(browser, shop.chatd.url, reduced_motion="reduce")

    def end_and_rate() -> Any:
        chat(page)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "widget-csat-end.png"))
        page.get_by_role("button", name="End chat").click()
        prompt = page.get_by_test_id("csat")
        expect(prompt).to_contain_text("This chat has ended.")
        expect(page.get_by_role("group", name="How was this chat?")).to_be_visible()
        expect(page.get_by_role("radio", name="1: Very poor")).to_be_focused()
        page.get_by_role("button", name="Send rating").click()  # nothing chosen yet
        expect(prompt.get_by_role("alert")).to_have_text("Choose 1 to 5.")
        for _ in range(3):
            page.keyboard.press("ArrowRight")
        expect(page.get_by_role("radio", name="4: Good")).to_be_checked()
        expect(prompt.get_by_role("alert")).to_be_empty()  # chosen: the hint goes
        page.keyboard.press("Tab")
        expect(page.get_by_role("textbox", name="Comment (optional)")).to_be_focused()
        page.keyboard.type("Quick and helpful")
        audit = page.evaluate(axe + "\n;axe.run(document.querySelector('chatd-widget'))")
        page.screenshot(path=str(SCREENSHOTS / "widget-csat.png"))
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")  # Send rating
        expect(prompt.get_by_role("status")).to_have_text("Thanks for your rating!")
        expect(page.get_by_role("group", name="How was this chat?")).to_be_hidden()
        expect(page.get_by_test_id("message-input")).to_be_focused()
        return audit

    audit = await browser.run(end_and_rate)
    serious = [v["id"] for v in audit["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == []
    stored = await rows(shop, "SELECT rating, comment FROM chat_ratings")
    assert stored == [{"rating": 4, "comment": "Quick and helpful"}]

    (_, event) = await shop.sink.wait_for(2)
    assert event.json["event"] == {"type": "rating", "rating": 4, "comment": "Quick and helpful"}
    signature = standard_signature(
        SECRET, event.headers["webhook-id"], int(event.headers["webhook-timestamp"]), event.body
    )
    assert event.headers["webhook-signature"] == signature

    def reload() -> None:
        page.reload()
        unsent_prompt(page)

    await browser.run(reload)
    assert len(await rows(shop, "SELECT 1 FROM chat_ratings")) == 1
    assert len(shop.sink.requests) == 2  # the message and the rating, nothing more
    assert page.errors == []  # type: ignore[attr-defined]  # the strict CSP refused nothing
    await browser.run(ctx.close)


async def test_an_expired_chat_is_asked_about_once_and_the_prompt_can_be_dismissed(
    browser: BrowserThread, shop: Pipeline
) -> None:
    ctx, page = await open_shop(browser, shop.chatd.url, viewport=MOBILE, reduced_motion="reduce")
    await browser.run(chat, page)
    async with shop.chatd.services.pool.connection() as conn:
        await conn.execute("UPDATE chat_sessions SET expires_at = now() - interval '1 second'")

    def reload_and_dismiss() -> None:
        page.reload()  # the widget finds its chat expired: chatd says to ask
        page.get_by_test_id("chat-bubble").click()
        expect(page.get_by_role("group", name="How was this chat?")).to_be_visible()
        expect(page.get_by_test_id("message-bot")).to_have_count(0)  # a new chat is ready
        page.screenshot(path=str(SCREENSHOTS / "widget-csat-phone.png"))
        page.get_by_role("button", name="No thanks").click()
        expect(page.get_by_test_id("csat")).to_be_hidden()
        expect(page.get_by_test_id("message-input")).to_be_focused()
        page.reload()
        unsent_prompt(page)
        say(page, "Another question")  # the new chat works
        expect(page.get_by_test_id("message-bot")).to_contain_text("Your order ships today.")
        expect(page.get_by_role("button", name="End chat")).to_be_visible()

    await browser.run(reload_and_dismiss)
    assert await rows(shop, "SELECT 1 FROM chat_ratings") == []
    sessions = await rows(shop, "SELECT status FROM chat_sessions ORDER BY created_at")
    assert len(sessions) == 2
    assert page.errors == []  # type: ignore[attr-defined]
    await browser.run(ctx.close)


async def test_a_chat_staff_end_on_the_admin_page_is_asked_about_at_once(
    browser: BrowserThread, shop: Pipeline
) -> None:
    ctx, page = await open_shop(browser, shop.chatd.url, reduced_motion="reduce")
    await browser.run(chat, page)
    staff_ctx, staff = await browser.new_page(viewport={"width": 1280, "height": 900})

    def end_on_the_admin_page() -> None:
        staff.goto(f"{shop.chatd.url}/admin")
        staff.get_by_test_id("token-input").fill(ADMIN_TOKEN)
        staff.get_by_test_id("token-submit").click()
        staff.get_by_test_id("session-row").click()
        expect(staff.get_by_test_id("transcript")).to_contain_text("Where is my order?")
        staff.get_by_role("button", name="End chat").click()
        expect(staff.get_by_test_id("transcript")).to_contain_text("Chat ended")
        expect(staff.get_by_role("button", name="End chat")).to_be_hidden()

    def rate_it() -> None:
        expect(page.get_by_role("group", name="How was this chat?")).to_be_visible()
        expect(page.get_by_role("button", name="End chat")).to_be_hidden()
        page.get_by_text("5", exact=True).click()
        page.get_by_role("button", name="Send rating").click()
        expect(page.get_by_test_id("csat").get_by_role("status")).to_have_text(
            "Thanks for your rating!"
        )

    await browser.run(end_on_the_admin_page)
    await browser.run(rate_it)
    assert await rows(shop, "SELECT rating, comment FROM chat_ratings") == [
        {"rating": 5, "comment": None}
    ]
    ended = await rows(shop, "SELECT metadata FROM chat_messages WHERE content = 'Chat ended'")
    assert ended == [{"metadata": {"event": "session_closed", "by": "staff"}}]
    assert page.errors == []  # type: ignore[attr-defined]
    assert staff.errors == []  # type: ignore[attr-defined]
    await browser.run(staff_ctx.close)
    await browser.run(ctx.close)
