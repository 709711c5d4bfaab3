"""The widget in a real Chromium: the guide's end-to-end scenarios and more.

Most tests embed the widget the way a shop does: a page on another origin (SHOP,
served by Playwright's router with a strict Content-Security-Policy) loads
{chatd}/widget.js with one tag, so CORS, the WebSocket origin allow-list and the CSP are all
real. chatd delivers to the local n8n sink (tests/sink.py). Screenshots of the open widget go
to build/screenshots/.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
from playwright.sync_api import BrowserContext, Page, Route, expect

from chatd.http.routes_web import widget_source
from tests.browser import BrowserThread, axe_source
from tests.conftest import make_settings, start_chatd
from tests.integration.test_delivery import Pipeline, open_pipeline
from tests.sink import Hold, Reply, Status

# Another origin than chatd's, on loopback too: Chromium lets a page reach a loopback server only
# from loopback (Local Network Access), and with the permission granted (tests/browser.py).
SHOP = "http://localhost:8111"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
MOBILE = {"width": 375, "height": 667}
IDENTITY_SECRET = "s" * 32
DESKTOP = {"width": 1280, "height": 800}

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def shop(nursery: trio.Nursery, database_url: str) -> AsyncIterator[Pipeline]:
    pipe = await open_pipeline(
        nursery,
        database_url,
        websocket={"allowed_origins": SHOP, "heartbeat_interval_seconds": 2},
        chat={"rate_limit_max": 100},
        identity={"secret": IDENTITY_SECRET},
        # A request the sink holds (typing indicator) must outlast a slow browser step.
        n8n={"timeout_seconds": 15},
    )
    pipe.sink.behave(Reply("How can I help you today?"))
    yield pipe
    pipe.chatd.stop.set()


def shop_page(chatd_url: str, attributes: str = "") -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>A shop</title>"
        f"<script src='{chatd_url}/widget.js' {attributes} async></script></head>"
        "<body><h1>A shop</h1><p>Products.</p></body></html>"
    )


def strict_csp(chatd_url: str) -> str:
    """A shop's strict policy, as docs/widget.md asks: images from chatd (signed file URLs) and
    blob: (a picked image's preview before it is sent)."""
    ws = chatd_url.replace("http://", "ws://")
    return (
        f"default-src 'none'; script-src {chatd_url}; connect-src {chatd_url} {ws};"
        f" img-src https: data: blob: {chatd_url}; style-src 'none'; base-uri 'none'"
    )


async def open_shop(
    browser: BrowserThread, chatd_url: str, attributes: str = "", **context: Any
) -> tuple[BrowserContext, Page]:
    context.setdefault("viewport", DESKTOP)
    ctx, page = await browser.new_page(**context)

    def go() -> None:
        def serve(route: Route) -> None:
            route.fulfill(
                status=200,
                content_type="text/html",
                headers={"Content-Security-Policy": strict_csp(chatd_url)},
                body=shop_page(chatd_url, attributes),
            )

        ctx.route(f"{SHOP}/", serve)
        page.goto(f"{SHOP}/")

    await browser.run(go)
    return ctx, page


def open_widget(page: Page) -> None:
    page.get_by_test_id("chat-bubble").click()
    expect(page.get_by_test_id("chat-window")).to_be_visible()


def say(page: Page, text: str) -> None:
    page.get_by_test_id("message-input").fill(text)
    page.get_by_test_id("send-button").click()


async def user_messages(pipe: Pipeline) -> list[str]:
    async with pipe.chatd.services.pool.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT content FROM chat_messages WHERE sender_type = 'user' ORDER BY created_at"
            )
        ).fetchall()
    return [row["content"] for row in rows]


async def test_full_conversation_then_history_after_reload(
    browser: BrowserThread, shop: Pipeline
) -> None:
    ctx, page = await open_shop(browser, shop.chatd.url)

    def converse() -> None:
        open_widget(page)
        expect(page.get_by_test_id("message-input")).to_be_focused()
        say(page, "Hello, I need help")
        expect(page.get_by_test_id("message-user")).to_contain_text("Hello, I need help")
        expect(page.get_by_test_id("message-bot")).to_contain_text("How can I help you today?")
        expect(page.get_by_test_id("message-status")).to_have_attribute("data-status", "delivered")
        page.reload()
        page.get_by_test_id("chat-bubble").click()
        expect(page.get_by_test_id("message-user")).to_contain_text("Hello, I need help")
        expect(page.get_by_test_id("message-bot")).to_contain_text("How can I help you today?")

    await browser.run(converse)
    assert page.errors == []  # type: ignore[attr-defined]  # the strict CSP refused nothing
    assert await user_messages(shop) == ["Hello, I need help"]
    request = shop.sink.requests[0].json
    assert request["message"]["content"] == "Hello, I need help"
    await browser.run(ctx.close)


async def test_offline_message_is_queued_and_delivered_once_when_back(
    browser: BrowserThread, shop: Pipeline
) -> None:
    ctx, page = await open_shop(browser, shop.chatd.url)

    def offline_then_online() -> None:
        open_widget(page)
        say(page, "first")
        expect(page.get_by_test_id("message-bot")).to_have_count(1)
        ctx.set_offline(True)
        say(page, "Test offline message")
        expect(page.get_by_test_id("connection-error")).to_be_visible()
        expect(page.get_by_test_id("message-user").last).to_contain_text("Test offline message")
        expect(page.get_by_test_id("message-status").last).to_have_attribute(
            "data-status", "pending"
        )
        page.wait_for_timeout(500)
        ctx.set_offline(False)
        expect(page.get_by_test_id("connection-error")).to_be_hidden(timeout=5000)
        expect(page.get_by_test_id("message-bot")).to_have_count(2)
        expect(page.get_by_test_id("message-user")).to_have_count(2)

    await browser.run(offline_then_online)
    assert await user_messages(shop) == ["first", "Test offline message"]  # exactly once
    await browser.run(ctx.close)


async def test_quick_replies_are_buttons_that_send_and_then_go(
    browser: BrowserThread, shop: Pipeline
) -> None:
    shop.sink.queue(Reply("Which one?", quick_replies=["Track my order", "Returns"]))
    ctx, page = await open_shop(browser, shop.chatd.url)

    def pick() -> None:
        open_widget(page)
        say(page, "help")
        buttons = page.get_by_test_id("quick-reply")
        expect(buttons).to_have_text(["Track my order", "Returns"])
        buttons.first.click()
        expect(page.get_by_test_id("message-user").last).to_contain_text("Track my order")
        expect(page.get_by_test_id("message-bot")).to_have_count(2)
        expect(page.get_by_test_id("quick-reply")).to_have_count(0)

    await browser.run(pick)
    assert shop.sink.requests[1].json["message"]["type"] == "quick_reply"
    await browser.run(ctx.close)


async def test_rich_content_images_links_and_attachments(
    browser: BrowserThread, shop: Pipeline
) -> None:
    shop.sink.queue(
        Reply(
            "See https://shop.example/returns. or mail help@shop.example: mailto:help@shop.example",
            type="rich_content",
            attachments=[
                {"type": "image", "url": "https://cdn.shop.example/boot.png", "title": "Boot"},
                {"type": "image", "url": "http://insecure.example/x.png", "title": "Plain http"},
                {"type": "file", "url": "https://shop.example/invoice.pdf", "title": "Invoice"},
                {"type": "link", "url": "https://shop.example/track", "title": "Track"},
            ],
        )
    )
    ctx, page = await open_shop(browser, shop.chatd.url)

    def look() -> dict[str, Any]:
        open_widget(page)
        say(page, "returns?")
        bot = page.get_by_test_id("message-bot")
        expect(bot).to_have_count(1)
        images = bot.locator("img")
        expect(images).to_have_count(1)
        expect(images).to_have_attribute("src", "https://cdn.shop.example/boot.png")
        expect(images).to_have_attribute("alt", "Boot")
        cards = bot.get_by_test_id("attachment")
        expect(cards).to_have_count(3)  # the http image is offered as a link, not loaded
        links = bot.locator("a")
        return {
            "hrefs": links.evaluate_all("as => as.map(a => a.getAttribute('href'))"),
            "rels": links.evaluate_all("as => as.map(a => a.rel)"),
        }

    found = await browser.run(look)
    assert "https://shop.example/returns" in found["hrefs"]
    assert "mailto:help@shop.example" in found["hrefs"]
    assert "http://insecure.example/x.png" in found["hrefs"]
    assert all(rel == "noopener noreferrer" for rel in found["rels"])
    await browser.run(ctx.close)


async def test_bot_typing_shows_while_n8n_works_and_clears_with_the_reply(
    browser: BrowserThread, shop: Pipeline
) -> None:
    shop.sink.queue(Hold(then=Reply("Done thinking")))
    ctx, page = await open_shop(browser, shop.chatd.url)

    def until_typing() -> None:
        open_widget(page)
        say(page, "think about it")
        expect(page.get_by_test_id("bot-typing")).to_be_visible()

    def until_reply() -> None:
        expect(page.get_by_test_id("message-bot")).to_contain_text("Done thinking")
        expect(page.get_by_test_id("bot-typing")).to_be_hidden()

    await browser.run(until_typing)
    # Typing shows when the job is claimed, a moment before the POST reaches the sink: a release
    # before then would leave the request waiting for the next one.
    await shop.sink.wait_for(1)
    shop.sink.release()
    await browser.run(until_reply)
    await browser.run(ctx.close)


async def test_a_failed_message_shows_failed_and_retry_delivers_it(
    browser: BrowserThread, shop: Pipeline
) -> None:
    shop.sink.queue(Status(400))  # n8n refuses: dead letter at once, the message fails
    ctx, page = await open_shop(browser, shop.chatd.url)

    def until_failed() -> None:
        open_widget(page)
        say(page, "will fail")
        expect(page.get_by_test_id("message-status")).to_have_attribute("data-status", "failed")
        # chatd's fallback reply tells the shopper; the retry then gets n8n's answer
        expect(page.get_by_test_id("message-bot")).to_have_count(1)
        page.get_by_test_id("retry-button").click()
        expect(page.get_by_test_id("message-bot").last).to_contain_text("How can I help you today?")
        statuses = page.get_by_test_id("message-status")
        expect(statuses).to_have_count(2)
        expect(statuses.first).to_have_attribute("data-status", "retried")
        expect(statuses.last).to_have_attribute("data-status", "delivered")
        expect(page.get_by_test_id("retry-button")).to_have_count(0)
        page.reload()  # the retry is remembered: no second retry button after a reload
        page.get_by_test_id("chat-bubble").click()
        expect(page.get_by_test_id("message-status").first).to_have_attribute(
            "data-status", "retried"
        )
        expect(page.get_by_test_id("retry-button")).to_have_count(0)

    await browser.run(until_failed)
    assert await user_messages(shop) == ["will fail", "will fail"]
    await browser.run(ctx.close)


async def test_keyboard_only_conversation(browser: BrowserThread, shop: Pipeline) -> None:
    shop.sink.queue(Reply("Pick one", quick_replies=["Yes please"]))
    ctx, page = await open_shop(browser, shop.chatd.url)

    def keyboard() -> None:
        page.locator("body").focus()
        page.keyboard.press("Tab")
        expect(page.get_by_test_id("chat-bubble")).to_be_focused()
        expect(page.get_by_role("button", name="Open chat")).to_be_visible()
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("message-input")).to_be_focused()
        page.keyboard.type("Hi from the keyboard")
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("message-bot")).to_contain_text("Pick one")
        quick = page.get_by_test_id("quick-reply")
        for _ in range(10):  # tab forward until the quick reply has focus
            if quick.evaluate("b => b.getRootNode().activeElement === b"):
                break
            page.keyboard.press("Tab")
        expect(quick).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("message-user").last).to_contain_text("Yes please")
        page.keyboard.press("Escape")
        expect(page.get_by_test_id("chat-window")).to_be_hidden()
        expect(page.get_by_test_id("chat-bubble")).to_be_focused()

    await browser.run(keyboard)
    assert await user_messages(shop) == ["Hi from the keyboard", "Yes please"]
    await browser.run(ctx.close)


async def test_axe_finds_no_serious_or_critical_violations(
    browser: BrowserThread, shop: Pipeline
) -> None:
    shop.sink.queue(Reply("Choose", quick_replies=["One", "Two"]))
    axe = await trio.to_thread.run_sync(axe_source)
    results: dict[str, Any] = {}
    for scheme in ("light", "dark"):
        ctx, page = await open_shop(browser, shop.chatd.url, color_scheme=scheme)

        def audit(page: Page = page) -> Any:
            page.get_by_test_id("chat-bubble").wait_for()
            closed = page.evaluate(axe + "\n;axe.run(document)")
            open_widget(page)
            say(page, "audit me")
            expect(page.get_by_test_id("message-bot")).to_have_count(1)
            return [closed, page.evaluate("axe.run(document)")]

        results[scheme] = await browser.run(audit)
        await browser.run(ctx.close)
    bad = [
        (scheme, v["id"], v["impact"], [n["target"] for n in v["nodes"]])
        for scheme, runs in results.items()
        for run in runs
        for v in run["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == []


XSS = [
    "<script>window.__xss = 1</script>",
    '<img src=x onerror="window.__xss = 1">',
    '<a href="javascript:window.__xss=1">click</a> javascript:window.__xss=1',
    "JaVaScRiPt:window.__xss=1 and java\tscript:window.__xss=1 and &#106;avascript:alert(1)",
    "data:text/html,<script>window.__xss=1</script> and vbscript:msgbox(1)",
    "<svg onload=window.__xss=1></svg><iframe src=javascript:window.__xss=1>",
]


async def test_xss_payloads_in_bot_replies_never_execute(
    browser: BrowserThread, shop: Pipeline
) -> None:
    shop.sink.queue(*[Reply(payload, quick_replies=[payload[:80]]) for payload in XSS])
    ctx, page = await open_shop(browser, shop.chatd.url)

    def attack() -> dict[str, Any]:
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        open_widget(page)
        for n in range(len(XSS)):
            say(page, f"payload {n}")
            expect(page.get_by_test_id("message-bot")).to_have_count(n + 1)
        links = page.get_by_test_id("message-bot").locator("a")
        for i in range(links.count()):
            links.nth(i).click(modifiers=["Control"])  # a new tab at most, never script here
        page.wait_for_timeout(300)
        return {
            "xss": page.evaluate("window.__xss"),
            "dialogs": dialogs,
            "texts": page.get_by_test_id("message-bot").all_inner_texts(),
            "hrefs": links.evaluate_all("as => as.map(a => a.href)"),
            "elements": page.get_by_test_id("message-bot")
            .locator("script, img, svg, iframe")
            .count(),
        }

    seen = await browser.run(attack)
    assert seen["xss"] is None
    assert seen["dialogs"] == []
    assert seen["elements"] == 0  # payloads stayed text
    assert all(h.startswith(("http://", "https://", "mailto:")) for h in seen["hrefs"])
    for payload, text in zip(XSS, seen["texts"], strict=True):
        assert payload.replace("\t", " ").split()[0] in text.replace("\t", " ")
    await browser.run(ctx.close)


async def test_narrow_viewport_is_full_screen_with_44px_targets(
    browser: BrowserThread, shop: Pipeline
) -> None:
    shop.sink.queue(Reply("Options", quick_replies=["A", "B"]))
    ctx, page = await open_shop(browser, shop.chatd.url, viewport=MOBILE, has_touch=True)

    def measure() -> dict[str, Any]:
        bubble = page.get_by_test_id("chat-bubble").bounding_box()
        open_widget(page)
        say(page, "small screen")
        expect(page.get_by_test_id("quick-reply")).to_have_count(2)
        targets = [
            page.get_by_test_id(name).first.bounding_box()
            for name in ("send-button", "close-button", "quick-reply", "message-input")
        ]
        return {
            "bubble": bubble,
            "window": page.get_by_test_id("chat-window").bounding_box(),
            "targets": targets,
        }

    sizes = await browser.run(measure)
    window = sizes["window"]
    assert (window["x"], window["y"]) == (0, 0)
    assert (window["width"], window["height"]) == (MOBILE["width"], MOBILE["height"])
    for box in [sizes["bubble"], *sizes["targets"]]:
        assert box["width"] >= 44, box
        assert box["height"] >= 44, box
    await browser.run(ctx.close)


async def test_signed_identity_and_guest_email_reach_the_session(
    browser: BrowserThread, shop: Pipeline
) -> None:
    user_hash = hmac.new(IDENTITY_SECRET.encode(), b"customer-42", hashlib.sha256).hexdigest()
    attributes = (
        f'data-user-id="customer-42" data-user-hash="{user_hash}"'
        ' data-guest-email="ann@shop.example" data-title="Ask Ann\'s shop"'
        ' data-strings=\'{"send": "Senden", "input": "Nachricht"}\''
    )
    ctx, page = await open_shop(browser, shop.chatd.url, attributes)

    def converse() -> None:
        open_widget(page)
        expect(page.get_by_test_id("chat-window").get_by_role("heading")).to_have_text(
            "Ask Ann's shop"
        )
        expect(page.get_by_role("button", name="Senden")).to_be_visible()
        page.get_by_label("Nachricht").fill("who am I?")
        page.get_by_role("button", name="Senden").click()
        expect(page.get_by_test_id("message-bot")).to_have_count(1)

    await browser.run(converse)
    payload = shop.sink.requests[0].json
    assert payload["userId"] == "customer-42"
    assert payload["userContext"]["isAuthenticated"] is True
    assert payload["guestEmail"] == "ann@shop.example"
    await browser.run(ctx.close)


async def test_reduced_motion_turns_animations_off(browser: BrowserThread, shop: Pipeline) -> None:
    ctx, page = await open_shop(browser, shop.chatd.url, reduced_motion="reduce")

    def animation() -> str:
        open_widget(page)
        return str(
            page.get_by_test_id("chat-window").evaluate("w => getComputedStyle(w).animationName")
        )

    assert await browser.run(animation) == "none"
    await browser.run(ctx.close)


@pytest.mark.parametrize("blocked", ["websocket", "websocket and sse"])
async def test_falls_back_when_websocket_is_blocked(
    browser: BrowserThread, shop: Pipeline, blocked: str
) -> None:
    ctx, page = await browser.new_page(viewport=DESKTOP)
    url = shop.chatd.url

    def block_and_converse() -> None:
        ctx.route_web_socket("**/api/chat/ws", lambda ws: ws.close())  # a proxy refusing
        if "sse" in blocked:
            ctx.route("**/api/chat/events/**", lambda route: route.abort())
        ctx.route(
            f"{SHOP}/",
            lambda route: route.fulfill(status=200, content_type="text/html", body=shop_page(url)),
        )
        page.goto(f"{SHOP}/")
        open_widget(page)
        say(page, "over a fallback")
        expect(page.get_by_test_id("message-bot")).to_contain_text(
            "How can I help you today?", timeout=15_000
        )
        expect(page.get_by_test_id("connection-error")).to_be_hidden(timeout=15_000)

    await browser.run(block_and_converse)
    assert await user_messages(shop) == ["over a fallback"]
    await browser.run(ctx.close)


async def test_demo_shop_page_chats_with_the_demo_bot(
    browser: BrowserThread, nursery: trio.Nursery, database_url: str, pool: Any
) -> None:
    settings = make_settings(database_url, queue={"dispatch": True, "poll_interval_seconds": 0.2})
    chatd = await start_chatd(nursery, settings, pool)
    ctx, page = await browser.new_page(viewport=DESKTOP)

    def demo() -> str | None:
        response = page.goto(chatd.url + "/")
        assert response is not None
        open_widget(page)
        say(page, "hello")
        expect(page.get_by_test_id("message-bot")).to_contain_text("demo shop assistant")
        return response.headers.get("content-security-policy")

    csp = await browser.run(demo)
    assert csp is not None
    assert "script-src 'self'" in csp
    assert page.errors == []  # type: ignore[attr-defined]
    await browser.run(ctx.close)
    chatd.stop.set()


@pytest.mark.parametrize(
    ("scheme", "viewport"),
    [("light", DESKTOP), ("dark", DESKTOP), ("light", MOBILE), ("dark", MOBILE)],
    ids=["light-desktop", "dark-desktop", "light-mobile", "dark-mobile"],
)
async def test_screenshots_of_the_open_widget(
    browser: BrowserThread, shop: Pipeline, scheme: str, viewport: dict[str, int]
) -> None:
    shop.sink.queue(
        Reply(
            "Your order #1042 ships today. Track it at https://shop.example/track/1042",
            quick_replies=["Thanks!", "Change address"],
        )
    )
    ctx, page = await open_shop(
        browser, shop.chatd.url, 'data-theme="auto"', color_scheme=scheme, viewport=viewport
    )
    name = f"widget-{scheme}-{'mobile' if viewport is MOBILE else 'desktop'}.png"

    def shoot() -> bytes:
        open_widget(page)
        say(page, "Where is my order?")
        expect(page.get_by_test_id("quick-reply")).to_have_count(2)
        expect(page.get_by_test_id("message-status")).to_have_attribute("data-status", "delivered")
        return page.screenshot(path=str(SCREENSHOTS / name))

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    image = await browser.run(shoot)
    assert image[:8] == b"\x89PNG\r\n\x1a\n"
    background = await browser.run(
        lambda: page.get_by_test_id("chat-window").evaluate(
            "w => getComputedStyle(w).backgroundColor"
        )
    )
    assert (background == "rgb(255, 255, 255)") == (scheme == "light")
    await browser.run(ctx.close)


MARKDOWN_REPLY = """**Trail X** boots, in *three* widths:

- Narrow, regular and wide
- Sizes 36 to 47, see [the size guide](https://shop.example/sizes)
- Waterproof: `Gore-Tex` lining

To check an order, send:

```
ORDER 1042
```

Or mail help@shop.example: mailto:help@shop.example. [Not a link](javascript:alert(1))"""


@pytest.mark.parametrize("viewport", [DESKTOP, MOBILE], ids=["desktop", "mobile"])
async def test_a_markdown_reply_renders_and_screenshots(
    browser: BrowserThread, shop: Pipeline, viewport: dict[str, int]
) -> None:
    shop.sink.queue(Reply(MARKDOWN_REPLY))
    ctx, page = await open_shop(browser, shop.chatd.url, viewport=viewport)
    name = f"widget-markdown-{'mobile' if viewport is MOBILE else 'desktop'}.png"

    def shoot() -> dict[str, Any]:
        open_widget(page)
        say(page, "Tell me about **Trail X** <b>boots</b>")  # the shopper's text stays as typed
        bot = page.get_by_test_id("message-bot")
        expect(bot.locator("pre code")).to_have_text("ORDER 1042")
        page.screenshot(path=str(SCREENSHOTS / name))
        return {
            "tags": bot.locator(".text *").evaluate_all(
                "es => es.map(e => e.tagName.toLowerCase())"
            ),
            "hrefs": bot.locator("a").evaluate_all("as => as.map(a => a.getAttribute('href'))"),
            "user": page.get_by_test_id("message-user").locator(".text").inner_html(),
        }

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    seen = await browser.run(shoot)
    assert seen["tags"] == [
        *["p", "strong", "em", "ul", "li", "li", "a", "li", "code"],
        *["p", "pre", "code", "p", "a"],
    ]
    assert seen["hrefs"] == ["https://shop.example/sizes", "mailto:help@shop.example"]
    assert seen["user"] == "Tell me about **Trail X** &lt;b&gt;boots&lt;/b&gt;"
    assert page.errors == []  # type: ignore[attr-defined]
    await browser.run(ctx.close)


def test_widget_script_is_small() -> None:
    # As chatd serves it: markdown.js and widget.js, gzipped: 10.5 KB before Markdown and streams,
    # 18.6 KB before attachments (paperclip, drop, paste, tray, uploads, lightbox: +5.3 KB).
    # csat.js (End chat and the rating prompt) adds 1.9 KB to the 23.6 KB of the attachments;
    # contact.js (an email left when nobody can answer a handoff) 0.5 KB to those 25.6 KB.
    assert len(gzip.compress(widget_source(), 9)) < 27 * 1024
