"""n8n's own chat widget, the real @n8n/chat from the npm registry, pointed at chatd.

A shop's page on another origin (SHOP, served by Playwright's router) loads the package's
chat.bundle.es.js and calls createChat({webhookUrl: "<chatd>/api/n8n-chat"}): the one line a shop
changes. chatd delivers to the sink (tests/sink.py); real Chromium, real CORS. Screenshots go
to build/screenshots/.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio
from playwright.sync_api import BrowserContext, Page, Route, expect

from tests.browser import BrowserThread, n8n_chat_dist
from tests.files import jpeg_with_location
from tests.integration.test_delivery import Pipeline, open_pipeline
from tests.sink import Reply, Status, Stream, Wait, chunk

SHOP = "http://localhost:8112"  # another origin than chatd's (loopback: tests/browser.py)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
ADMIN_TOKEN = "admin-token-0123456789abcdef0123456789"
BOT = ".chat-message-from-bot:not(.chat-message-typing)"  # the typing dots are one too
USER = ".chat-message-from-user"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def shop(nursery: trio.Nursery, database_url: str) -> AsyncIterator[Pipeline]:
    pipe = await open_pipeline(
        nursery,
        database_url,
        n8n_chat={"enabled": True, "reply_timeout_seconds": 10},
        websocket={"allowed_origins": SHOP},
        admin={"token": ADMIN_TOKEN},
    )
    pipe.sink.behave(Reply("Your order ships **today**."))
    yield pipe
    pipe.chatd.stop.set()


def shop_page(chatd_url: str, options: dict[str, object]) -> str:
    config = json.dumps({"webhookUrl": f"{chatd_url}/api/n8n-chat", **options})
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>A shop</title>"
        "<link href='/n8n-chat/style.css' rel='stylesheet'></head>"
        "<body><h1>A shop</h1><p>Products.</p><script type='module'>"
        "import { createChat } from '/n8n-chat/chat.bundle.es.js';"
        f"createChat({config});"
        "</script></body></html>"
    )


async def open_shop(
    browser: BrowserThread, chatd_url: str, **options: object
) -> tuple[BrowserContext, Page]:
    ctx, page = await browser.new_page(viewport={"width": 1280, "height": 800})
    dist = n8n_chat_dist()
    html = shop_page(chatd_url, options)

    def go() -> None:
        def serve_page(route: Route) -> None:
            route.fulfill(status=200, content_type="text/html", body=html)

        def serve_package(route: Route) -> None:
            name = route.request.url.removeprefix(f"{SHOP}/n8n-chat/")
            path = dist / name
            if "/" in name or not path.is_file():
                route.fulfill(status=404)
                return
            kind = "text/javascript" if name.endswith((".js", ".mjs")) else None
            route.fulfill(
                status=200,
                content_type=kind or mimetypes.guess_type(name)[0] or "application/octet-stream",
                body=path.read_bytes(),
            )

        ctx.route(f"{SHOP}/", serve_page)
        ctx.route(f"{SHOP}/n8n-chat/*", serve_package)
        page.goto(f"{SHOP}/")

    await browser.run(go)
    return ctx, page


def open_chat(page: Page) -> None:
    page.locator(".chat-window-toggle").click()
    expect(page.locator(".chat-window")).to_be_visible()


def say(page: Page, text: str) -> None:
    page.locator('[data-test-id="chat-input"]').fill(text)
    page.keyboard.press("Enter")


async def rows(pipe: Pipeline) -> list[tuple[str, str, str]]:
    async with pipe.chatd.services.pool.connection() as conn:
        found = await (
            await conn.execute(
                "SELECT sender_type, content, status FROM chat_messages ORDER BY created_at, seq"
            )
        ).fetchall()
    return [(r["sender_type"], r["content"], r["status"]) for r in found]


async def test_send_see_the_reply_and_reload_shows_the_previous_session(
    browser: BrowserThread, shop: Pipeline
) -> None:
    ctx, page = await open_shop(browser, shop.chatd.url)

    def converse() -> None:
        open_chat(page)
        say(page, "Where is my order?")
        expect(page.locator(USER).last).to_contain_text("Where is my order?")
        expect(page.locator(BOT).last).to_contain_text("Your order ships today.")
        expect(page.locator(f"{BOT} strong").last).to_have_text("today")  # markdown rendered
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "n8n-chat-widget.png"))
        page.reload()
        open_chat(page)
        expect(page.locator(USER)).to_have_text(["Where is my order?"])
        expect(page.locator(BOT).last).to_contain_text("Your order ships today.")

    await browser.run(converse)
    assert page.errors == []  # type: ignore[attr-defined]  # no CORS refusal, no script error
    assert await rows(shop) == [
        ("user", "Where is my order?", "delivered"),
        ("bot", "Your order ships **today**.", "delivered"),
    ]
    await browser.run(ctx.close)


async def test_n8n_down_shows_the_fallback_and_the_message_is_a_retryable_dead_letter(
    browser: BrowserThread, shop: Pipeline
) -> None:
    shop.sink.behave(Status(503))
    fallback = shop.chatd.services.settings.n8n.fallback_reply
    ctx, page = await open_shop(browser, shop.chatd.url)

    def fail() -> None:
        open_chat(page)
        say(page, "Is anyone there?")
        expect(page.locator(BOT).last).to_contain_text(fallback)
        page.screenshot(path=str(SCREENSHOTS / "n8n-chat-widget-fallback.png"))

    await browser.run(fail)
    assert await rows(shop) == [
        ("user", "Is anyone there?", "failed"),
        ("bot", fallback, "delivered"),
    ]
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with shop.chatd.client() as client:
        dead = (await client.get("/api/admin/dead", headers=admin)).json()["deadLetters"]
        assert [d["content"] for d in dead] == ["Is anyone there?"]
        shop.sink.behave(Reply("Back now: yes!"))
        retried = await client.post(f"/api/admin/dead/{dead[0]['jobId']}/retry", headers=admin)
        assert retried.json() == {"retried": 1}
    with trio.fail_after(10):
        while len(await rows(shop)) < 3:
            await trio.sleep(0.05)

    def reload() -> None:
        page.reload()
        open_chat(page)
        expect(page.locator(BOT).last).to_contain_text("Back now: yes!")

    await browser.run(reload)
    await browser.run(ctx.close)


async def test_streaming_widget_reads_the_ndjson_answer(
    browser: BrowserThread, shop: Pipeline
) -> None:
    ctx, page = await open_shop(browser, shop.chatd.url, enableStreaming=True)

    def converse() -> None:
        open_chat(page)
        say(page, "stream please")
        expect(page.locator(BOT).last).to_contain_text("Your order ships today.")

    await browser.run(converse)
    assert page.errors == []  # type: ignore[attr-defined]
    await browser.run(ctx.close)


async def test_streamed_reply_grows_in_the_widget_before_it_ends(
    browser: BrowserThread, shop: Pipeline
) -> None:
    shop.sink.behave(
        Stream(
            [
                chunk("begin"),
                chunk("item", content="Your order "),
                chunk("item", content="ships "),
                Wait(),  # the rest only once the test has seen the first pieces in the page
                chunk("item", content="today."),
                chunk("end"),
            ]
        )
    )
    ctx, page = await open_shop(browser, shop.chatd.url, enableStreaming=True)

    def first_pieces() -> None:
        open_chat(page)
        say(page, "When does it ship?")
        expect(page.locator(BOT).last).to_have_text("Your order ships")
        page.screenshot(path=str(SCREENSHOTS / "n8n-chat-widget-streaming.png"))

    await browser.run(first_pieces)
    assert [r[0] for r in await rows(shop)] == ["user"]  # nothing stored yet: still streaming
    shop.sink.release()

    def the_rest() -> None:
        expect(page.locator(BOT).last).to_have_text("Your order ships today.")
        page.reload()
        open_chat(page)
        expect(page.locator(BOT).last).to_have_text("Your order ships today.")
        expect(page.locator(BOT).filter(has_text="Your order")).to_have_count(1)

    await browser.run(the_rest)
    assert page.errors == []  # type: ignore[attr-defined]
    assert await rows(shop) == [
        ("user", "When does it ship?", "delivered"),
        ("bot", "Your order ships today.", "delivered"),
    ]
    await browser.run(ctx.close)


async def test_a_file_attached_in_the_widget_reaches_n8n_and_the_reply_is_shown(
    browser: BrowserThread, shop: Pipeline
) -> None:
    shop.sink.behave(Reply("I can see the dent, sorry! A new one ships **today**."))
    photo = jpeg_with_location(320, 200)
    ctx, page = await open_shop(browser, shop.chatd.url, allowFileUploads=True)

    def attach_and_send() -> str | None:
        open_chat(page)
        with page.expect_file_chooser() as chooser:
            page.locator('[data-test-id="chat-attach-file-button"]').click()
        chooser.value.set_files(
            files=[{"name": "dent.jpg", "mimeType": "image/jpeg", "buffer": photo}]
        )
        expect(page.locator('[data-test-id="chat-file"]')).to_contain_text("dent.jpg")
        say(page, "The parcel arrived dented")
        expect(page.locator(BOT).last).to_contain_text("I can see the dent")
        expect(page.locator(USER).last).to_contain_text("dent.jpg")  # the widget's own chip
        page.screenshot(path=str(SCREENSHOTS / "n8n-chat-widget-file.png"))
        page.reload()
        open_chat(page)  # the previous session: the file as a link in the shopper's message
        expect(page.locator(f"{USER} a").last).to_have_text("dent.jpg")
        page.screenshot(path=str(SCREENSHOTS / "n8n-chat-widget-file-reloaded.png"))
        return page.locator(f"{USER} a").last.get_attribute("href")

    link = await browser.run(attach_and_send)
    assert page.errors == []  # type: ignore[attr-defined]
    (request,) = shop.sink.requests
    assert request.json["message"]["content"] == "The parcel arrived dented"
    (sent,) = request.json["message"]["attachments"]
    assert (sent["name"], sent["type"], sent["kind"]) == ("dent.jpg", "image/jpeg", "image")
    async with httpx.AsyncClient(timeout=10) as n8n:  # the URL works for n8n
        fetched = await n8n.get(sent["url"])
        assert link is not None
        linked = await n8n.get(link)  # the history's link, signed when the history was read
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "image/jpeg"
    assert linked.content == fetched.content
    assert await rows(shop) == [
        ("user", "The parcel arrived dented", "delivered"),
        ("bot", "I can see the dent, sorry! A new one ships **today**.", "delivered"),
    ]
    await browser.run(ctx.close)
