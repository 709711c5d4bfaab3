"""The admin page's search, tags and a shopper's data (admin-search.js) in a real Chromium
against a real chatd, PostgreSQL and n8n sink: a search finds a message and marks it in its
conversation, a tag added shows in the list and filters, a shopper deleted is gone; at 1280 and
375 px (screenshots in build/screenshots/admin-search*.png), accessible (axe-core)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from playwright.sync_api import Page, expect

from tests.browser import BrowserThread, axe_source
from tests.e2e.test_admin_page import (
    DESKTOP,
    MEASURE,
    PHONE,
    SCREENSHOTS,
    TOKEN,
    XSS,
    chat,
    open_admin,
    sign_in,
    unexpected_errors,
)
from tests.integration.test_delivery import Pipeline, open_pipeline
from tests.sink import Reply

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def ops(nursery: trio.Nursery, database_url: str) -> AsyncIterator[Pipeline]:
    pipe = await open_pipeline(nursery, database_url, admin={"token": TOKEN})
    pipe.sink.behave(Reply("Happy to help."))
    ann, first = await chat(
        pipe, f"Are the trail shoes waterproof? {XSS}", guestEmail="ann@shop.example"
    )
    bob, second = await chat(pipe, "Where is my parcel?", guestEmail="bob@shop.example")
    await pipe.wait_job(first, "completed")
    await pipe.wait_job(second, "completed")
    await pipe.wait_messages(ann, 2)
    await pipe.wait_messages(bob, 2)
    yield pipe
    pipe.chatd.stop.set()


def search(page: Page, words: str) -> None:
    page.get_by_label("Words").fill(words)
    page.get_by_label("Words").press("Enter")


async def sessions_of(pipe: Pipeline, email: str) -> int:
    async with pipe.chatd.services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM chat_sessions WHERE guest_email = %s", [email]
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row["n"])


async def test_search_tag_filter_and_delete_a_shopper(
    browser: BrowserThread, ops: Pipeline
) -> None:
    axe = await trio.to_thread.run_sync(axe_source)
    ctx, page, _ = await open_admin(browser, ops.chatd.url, DESKTOP)

    def find_and_tag() -> Any:
        sign_in(page, TOKEN)
        search(page, "trail")
        hits = page.get_by_test_id("search-hit")
        expect(hits).to_have_count(1)
        expect(hits.locator("mark")).to_have_text("trail")
        expect(hits).to_contain_text(XSS)  # as text, not markup
        assert hits.locator("img").count() == 0
        hits.get_by_role("button", name="Open conversation").click()
        shown = page.get_by_test_id("conversation")
        expect(shown.locator("li")).to_have_count(2)
        match = shown.locator("li.hit-msg")
        expect(match).to_have_count(1)
        expect(match.locator("mark")).to_have_text("trail")
        expect(match).to_have_attribute("aria-current", "true")
        expect(page.get_by_role("heading", name="Conversation")).to_be_focused()

        page.get_by_label("Add a tag").fill("VIP Customer")
        page.get_by_role("button", name="Add tag").click()
        expect(page.get_by_test_id("conversation-tag").locator("span")).to_have_text(
            ["vip-customer"]
        )
        tag_button = page.get_by_test_id("tag-count")
        expect(tag_button).to_have_count(1)
        expect(tag_button).to_contain_text("vip-customer")
        expect(tag_button.locator(".count")).to_have_text("1")
        tag_button.click()
        expect(page.get_by_test_id("tagged-session")).to_have_count(1)
        expect(page.get_by_test_id("tagged-session")).to_contain_text("ann@shop.example")

        search(page, "help")  # the bot's reply, in both conversations; the tag chosen above
        expect(page.get_by_test_id("search-hit")).to_have_count(1)
        expect(page.get_by_test_id("search-hit")).to_contain_text("ann@shop.example")
        page.get_by_label("Tag", exact=True).select_option("")
        page.get_by_role("button", name="Search", exact=True).click()
        expect(page.get_by_test_id("search-hit")).to_have_count(2)
        page.get_by_label("Sender").select_option("user")
        page.get_by_role("button", name="Search", exact=True).click()
        expect(page.get_by_test_id("search-hit")).to_have_count(0)
        expect(page.get_by_text("No message matches.")).to_be_visible()
        page.get_by_label("Sender").select_option("any")
        page.get_by_label("Rating", exact=True).select_option("unrated")  # nobody rated yet
        page.get_by_role("button", name="Search", exact=True).click()
        expect(page.get_by_test_id("search-hit")).to_have_count(2)
        page.get_by_label("Rating", exact=True).select_option("5")
        page.get_by_role("button", name="Search", exact=True).click()
        expect(page.get_by_test_id("search-hit")).to_have_count(0)
        page.get_by_label("Rating", exact=True).select_option("")
        page.get_by_label("Handoff").select_option("yes")  # nobody asked for a person
        page.get_by_role("button", name="Search", exact=True).click()
        expect(page.get_by_test_id("search-hit")).to_have_count(0)
        page.get_by_label("Handoff").select_option("no")
        page.get_by_label("State now").select_option("bot")
        page.get_by_role("button", name="Search", exact=True).click()
        expect(page.get_by_test_id("search-hit")).to_have_count(2)
        page.get_by_label("Handoff").select_option("")
        page.get_by_label("State now").select_option("")
        page.get_by_label("Agent", exact=True).fill("nobody@shop.example")
        page.get_by_role("button", name="Search", exact=True).click()
        expect(page.get_by_role("status").filter(has_text="no agent has")).to_be_visible()
        page.get_by_label("Agent", exact=True).fill("")

        search(page, "trail")
        expect(page.get_by_test_id("search-hit")).to_have_count(1)
        page.get_by_test_id("search-hit").get_by_role("button").click()
        expect(page.get_by_test_id("conversation").locator("li.hit-msg")).to_have_count(1)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "admin-search.png"), full_page=True)
        return page.evaluate(axe + "\n;axe.run(document)")

    audit = await browser.run(find_and_tag)
    serious = [
        (v["id"], [n["target"] for n in v["nodes"]])
        for v in audit["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == []

    def remove_tag() -> None:
        page.get_by_role("button", name="Remove tag vip-customer").click()
        expect(page.get_by_test_id("conversation-tag")).to_have_count(0)
        expect(page.get_by_text("No tags yet.")).to_be_visible()

    await browser.run(remove_tag)

    def delete_ann() -> None:
        page.get_by_label("Email or user id").fill("ANN@shop.example")
        page.get_by_role("button", name="Delete…").click()
        confirm = page.get_by_role("alertdialog")
        expect(confirm).to_contain_text("1 conversation(s) with 2 message(s)")
        page.get_by_role("button", name="Cancel").click()
        expect(confirm).to_be_hidden()
        expect(page.get_by_text("Nothing deleted.")).to_be_visible()

    await browser.run(delete_ann)
    assert await sessions_of(ops, "ann@shop.example") == 1

    def confirmed() -> None:
        page.get_by_role("button", name="Delete…").click()
        page.get_by_role("button", name="Delete for good").click()
        status = page.get_by_test_id("shopper-status")
        expect(status).to_contain_text("audit record")
        expect(status).to_contain_text("chat_messages 2")
        expect(page.get_by_test_id("search-hit")).to_have_count(0)  # the search ran again

    await browser.run(confirmed)
    assert await sessions_of(ops, "ann@shop.example") == 0
    assert await sessions_of(ops, "bob@shop.example") == 1
    async with ops.chatd.services.pool.connection() as conn:
        rows = await (await conn.execute("SELECT requested_by FROM chat_erasures")).fetchall()
    assert [r["requested_by"] for r in rows] == ["admin api from 127.0.0.1"]
    # The one refusal asked for: the unknown agent (Chromium logs every 4xx it loads).
    refused = [e for e in unexpected_errors(page) if "status of 400" in e]
    assert len(refused) == 1
    assert [e for e in unexpected_errors(page) if e not in refused] == []
    await browser.run(ctx.close)


async def test_on_a_phone_search_and_tags_fit(browser: BrowserThread, ops: Pipeline) -> None:
    ctx, page, _ = await open_admin(browser, ops.chatd.url, PHONE)

    def on_a_phone() -> dict[str, Any]:
        sign_in(page, TOKEN)
        search(page, "help")
        expect(page.get_by_test_id("search-hit")).to_have_count(2)
        page.get_by_test_id("search-hit").first.get_by_role("button").click()
        page.get_by_label("Add a tag").fill("refund")
        page.get_by_role("button", name="Add tag").click()
        expect(page.get_by_test_id("tag-count")).to_have_count(1)
        page.get_by_label("Email or user id").fill("bob@shop.example")
        page.get_by_role("button", name="Delete…").click()
        expect(page.get_by_role("alertdialog")).to_be_visible()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "admin-search-phone.png"), full_page=True)
        for name, heading in (("search", "Search messages"), ("shopper", "A shopper's data")):
            page.get_by_role("heading", name=heading).evaluate("h => h.scrollIntoView()")
            page.screenshot(path=str(SCREENSHOTS / f"admin-search-phone-{name}.png"))
        return page.evaluate(MEASURE)

    layout = await browser.run(on_a_phone)
    assert layout["viewport"] == PHONE["width"]
    assert layout["pageWidth"] <= layout["viewport"]
    names = [b["name"] for b in layout["buttons"]]
    assert "Delete for good" in names
    assert "Remove tag refund" in names
    for button in layout["buttons"]:
        assert button["left"] >= 0, button
        assert button["right"] <= layout["viewport"], button
    assert unexpected_errors(page) == []
    await browser.run(ctx.close)
