"""The out-of-the-box demo in a real Chromium: the demo shop page opened at http://localhost:<port>
(chatd bound to 127.0.0.1) chats over its WebSocket with the built-in demo bot, and an origin the
allow-list refuses is logged once. Screenshots go to build/screenshots/demo-*.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from playwright.sync_api import Page, Route, WebSocket, expect
from structlog.testing import capture_logs

from chatd.db.pool import Pool
from tests.browser import BrowserThread
from tests.conftest import RunningChatd, make_settings, start_chatd

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
MOBILE = {"width": 375, "height": 667}
SHOP = "http://localhost:8111"  # a page the allow-list does not name

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def demo(nursery: trio.Nursery, database_url: str, pool: Pool) -> RunningChatd:
    """chatd as it starts out of the box: no n8n.webhook_url, listening on 127.0.0.1."""
    settings = make_settings(database_url, queue={"dispatch": True, "poll_interval_seconds": 0.2})
    chatd = await start_chatd(nursery, settings, pool)
    assert chatd.url.startswith("http://127.0.0.1:")
    return chatd


def say(page: Page, text: str) -> None:
    page.get_by_test_id("message-input").fill(text)
    page.get_by_test_id("send-button").click()


@pytest.mark.parametrize("viewport", [DESKTOP, MOBILE], ids=["desktop", "mobile"])
async def test_the_demo_at_localhost_chats_over_websocket_with_an_honest_demo_bot(
    browser: BrowserThread, demo: RunningChatd, viewport: dict[str, int]
) -> None:
    url = demo.url.replace("127.0.0.1", "localhost")
    ctx, page = await browser.new_page(viewport=viewport)
    sockets: list[WebSocket] = []
    received: list[str] = []
    requests: list[str] = []
    name = f"demo-{'mobile' if viewport is MOBILE else 'desktop'}.png"

    def converse() -> None:
        def opened(ws: WebSocket) -> None:
            sockets.append(ws)
            ws.on("framereceived", lambda payload: received.append(str(payload)))

        page.on("websocket", opened)
        page.on("request", lambda request: requests.append(request.url))
        page.goto(f"{url}/")
        page.get_by_test_id("chat-bubble").click()
        bot = page.get_by_test_id("message-bot")
        say(page, "Track my order")
        expect(bot.last).to_contain_text("what's your order number?")
        expect(page.get_by_test_id("quick-reply")).to_have_count(0)  # no "Track my order" again
        say(page, "It's #12345")
        expect(bot.last).to_contain_text("Order #12345 ")
        expect(bot.last).to_contain_text("made up")
        say(page, "Can I talk to a human?")
        expect(bot.last).to_contain_text("ask a colleague to join")
        expect(page.get_by_test_id("quick-reply")).not_to_contain_text(["human"])
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / name))

    await browser.run(converse)
    ws_url = url.replace("http://", "ws://") + "/api/chat/ws"
    assert [ws.url for ws in sockets] == [ws_url]  # one WebSocket, never refused
    assert any('"type":"joined"' in frame.replace(" ", "") for frame in received)
    assert not [r for r in requests if "/api/chat/events/" in r]  # no fallback to SSE
    assert page.errors == []  # type: ignore[attr-defined]
    await browser.run(ctx.close)
    demo.stop.set()


async def test_an_origin_the_allow_list_refuses_is_logged_once(
    browser: BrowserThread, demo: RunningChatd
) -> None:
    ctx, page = await browser.new_page(viewport=DESKTOP)
    ws_url = demo.url.replace("http://", "ws://") + "/api/chat/ws"

    def try_twice() -> list[Any]:
        def serve(route: Route) -> None:
            route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>x")

        ctx.route(f"{SHOP}/", serve)
        page.goto(f"{SHOP}/")
        # Like the widget, which tries twice before it falls back to SSE.
        return [
            page.evaluate(
                """url => new Promise(done => {
                    const ws = new WebSocket(url);
                    ws.onopen = () => done("open");
                    ws.onclose = (event) => done(`closed ${event.code}`);
                })""",
                ws_url,
            )
            for _ in range(2)
        ]

    with capture_logs() as logs:
        outcomes = await browser.run(try_twice)
    assert outcomes == ["closed 1006", "closed 1006"]  # the handshake was refused (403)
    (refusal,) = [e for e in logs if e["event"] == "websocket_origin_refused"]
    assert refusal["origin"] == SHOP
    assert refusal["config_key"] == "websocket.allowed_origins"
    assert refusal["log_level"] == "warning"
    await browser.run(ctx.close)
    demo.stop.set()
