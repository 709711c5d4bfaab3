"""Issue 20's end-to-end test, against chatd itself: a shopper attaches a PNG and a PDF (file
chooser, drag and drop, paste) on a shop page under a strict CSP, sees progress and thumbnails;
the n8n sink gets working signed URLs and fetches the bytes; the bot answers with an image;
after a reload every file is still there. (chatd in the test's process; the same through
`chatd serve`, with a JPEG's EXIF and a refused file: test_widget_attach_served.py.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio
from playwright.sync_api import expect

from tests.browser import BrowserThread
from tests.e2e.test_widget import IDENTITY_SECRET, SHOP, open_shop, open_widget
from tests.e2e.test_widget_attach import (
    DRAG,
    DROP,
    INVOICE,
    LOADED,
    PASTE,
    PHOTO,
    SCREENSHOT,
    WATCH_PROGRESS,
    intercept_file_choosers,
    page_files,
    payload,
    tray,
)
from tests.integration.test_delivery import Pipeline, open_pipeline
from tests.sink import Received, Reply

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def shop(nursery: trio.Nursery, database_url: str) -> AsyncIterator[Pipeline]:
    pipe = await open_pipeline(
        nursery,
        database_url,
        websocket={"allowed_origins": SHOP, "heartbeat_interval_seconds": 2},
        chat={"rate_limit_max": 100},
        identity={"secret": IDENTITY_SECRET},
        n8n={"timeout_seconds": 15},
    )
    yield pipe
    pipe.chatd.stop.set()


def attachments_of(request: Received) -> list[dict[str, Any]]:
    """The files n8n was given with the shopper's message (the webhook payload's message)."""
    found = request.json["message"].get("attachments") or []
    return list(found)


async def test_a_shopper_sends_a_png_and_a_pdf_and_the_bot_answers_with_an_image(
    browser: BrowserThread, shop: Pipeline
) -> None:
    def answer(request: Received) -> Reply:
        images = [a for a in attachments_of(request) if a.get("kind") == "image"]
        image = {"type": "image", "url": images[0]["url"], "title": "Your label"}
        return Reply("Thanks! Here is your return label.", attachments=[image])

    shop.sink.behave(answer)
    ctx, page = await open_shop(browser, shop.chatd.url)
    await browser.run(intercept_file_choosers, page)

    def attach_and_send() -> list[float]:
        open_widget(page)
        page.evaluate(WATCH_PROGRESS)
        with page.expect_file_chooser() as chooser:
            page.get_by_role("button", name="Attach files").click()
        chooser.value.set_files(payload("photo.png", "image/png", PHOTO))
        page.evaluate(DRAG, page_files(("invoice.pdf", "application/pdf", INVOICE)))
        page.evaluate(DROP)
        page.evaluate(PASTE, page_files(("image.png", "image/png", SCREENSHOT)))
        for i in range(3):
            expect(tray(page).nth(i)).to_have_attribute("data-state", "done")
        page.get_by_test_id("message-input").fill("The photo, the invoice and a screenshot")
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("message-bot")).to_contain_text("Here is your return label")
        progress: list[float] = page.evaluate("window.__progress")
        return progress

    progress = await browser.run(attach_and_send)
    assert progress
    assert progress[-1] == 1
    [request] = shop.sink.requests
    files = attachments_of(request)
    assert [(f["name"], f["kind"]) for f in files] == [
        ("photo.png", "image"),
        ("invoice.pdf", "file"),
        ("image.png", "image"),
    ]
    async with httpx.AsyncClient(timeout=10) as n8n:  # n8n fetches what it was given
        fetched = [await n8n.get(f["url"]) for f in files]
    assert [r.status_code for r in fetched] == [200, 200, 200]
    assert [r.headers["content-type"] for r in fetched] == [
        "image/png",
        "application/pdf",
        "image/png",
    ]
    assert fetched[1].content == INVOICE  # a PDF as it was sent; images are re-encoded
    assert [r.content[:8] for r in (fetched[0], fetched[2])] == [PHOTO[:8], SCREENSHOT[:8]]

    def everything_shown() -> dict[str, Any]:
        user = page.get_by_test_id("message-user")
        thumbs = user.get_by_test_id("attachment-image").locator("img")
        expect(thumbs).to_have_count(2)
        expect(user.get_by_test_id("attachment-file")).to_contain_text("invoice.pdf")
        bot_image = page.get_by_test_id("message-bot").locator("img")
        expect(bot_image).to_have_attribute("alt", "Your label")
        for img in [*thumbs.all(), bot_image]:
            img.scroll_into_view_if_needed()
            img.evaluate("img => img.decode()")
        return {
            "thumbs": thumbs.evaluate_all(f"imgs => imgs.map({LOADED})"),
            "bot": bot_image.evaluate(LOADED),
        }

    assert await browser.run(everything_shown) == {"thumbs": [True, True], "bot": True}

    def after_reload() -> dict[str, Any]:
        page.reload()
        open_widget(page)
        return everything_shown()

    assert await browser.run(after_reload) == {"thumbs": [True, True], "bot": True}
    assert page.errors == []  # type: ignore[attr-defined]  # the strict CSP refused nothing
    await browser.run(ctx.close)
