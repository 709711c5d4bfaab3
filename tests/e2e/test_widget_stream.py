"""The widget and streamed replies, in a real Chromium: the real widget script (as chatd serves
it) on a shop page under a strict CSP, fed the protocol's events by a real server on 127.0.0.1
(tests/standin.py) over WebSocket, SSE or long-poll, the test choosing each event and moment.

What a shopper sees (text growing in one bubble with a caret, Markdown as it arrives, the stored
reply taking the bubble's place, a list that stays put while they read above) and what a screen
reader is told (nothing per piece: the streaming bubble is aria-busy and outside the live
region; the finished reply joins the log once). Screenshots go to build/screenshots/.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser import BrowserThread, axe_source
from tests.e2e.test_widget import DESKTOP, MOBILE, SCREENSHOTS, SHOP, open_widget, strict_csp
from tests.standin import StandIn

SID = "session-streams"
TOKEN = "token-streams"
ROOT = "document.querySelector('chatd-widget').shadowRoot"
# Every change in the log's live region from now on: what a screen reader would be told.
WATCH_LIVE = f"""() => {{
  window.__live = [];
  new MutationObserver((records) => {{
    for (const r of records) window.__live.push({{type: r.type, added: [...r.addedNodes].map((n) => n.textContent)}});
  }}).observe({ROOT}.querySelector('[role=log]'), {{subtree: true, childList: true, characterData: true, attributes: true}});
}}"""
BUBBLES = f"""() => [...{ROOT}.querySelectorAll('[data-testid=message-bot]')].map((li) => ({{
  text: li.querySelector('.text').textContent,
  busy: li.getAttribute('aria-busy'),
  caret: li.querySelector('.caret') ? li.querySelector('.caret').parentNode.tagName : null,
  live: li.closest('[aria-live]') !== null,
  top: Math.round(li.getBoundingClientRect().top),
  tags: [...li.querySelector('.text').querySelectorAll('*')].map((e) => e.tagName.toLowerCase()),
}}))"""
LOG = f"""() => {{ const log = {ROOT}.querySelector('.log');
  return {{top: log.scrollTop, gap: log.scrollHeight - log.scrollTop - log.clientHeight}}; }}"""

pytestmark = pytest.mark.timeout(120)


def message(seq: int, sender: str, content: str, message_id: str | None = None) -> dict[str, Any]:
    return {
        "type": "new_message",
        "sessionId": SID,
        "message": {
            "id": message_id or f"m{seq}",
            "sessionId": SID,
            "senderType": sender,
            "content": content,
            "messageType": "text",
            "metadata": {},
            "status": "delivered",
            "seq": seq,
            "createdAt": "2025-05-01T10:00:00Z",
        },
    }


def piece(kind: str, message_id: str, index: int, text: str) -> dict[str, Any]:
    """A `message_delta` (one piece) or `message_stream` (all the text so far)."""
    return {
        "type": kind,
        "sessionId": SID,
        "messageId": message_id,
        "replyTo": "m1",
        "index": index,
        "text": text,
    }


def delta(message_id: str, index: int, text: str) -> dict[str, Any]:
    return piece("message_delta", message_id, index, text)


def snapshot(message_id: str, index: int, text: str) -> dict[str, Any]:
    return piece("message_stream", message_id, index, text)


async def open_shop(
    browser: BrowserThread, standin: StandIn, transports: str = "websocket", **context: Any
) -> tuple[BrowserContext, Page]:
    """The shop's page with the widget, its session already in localStorage (as after a
    first visit), so the widget connects to the stand-in at once."""
    context.setdefault("viewport", DESKTOP)
    ctx, page = await browser.new_page(**context)
    saved = {"session": {"id": SID, "token": TOKEN}, "userId": None, "outbox": []}
    html = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>A shop</title>"
        f"<script src='{standin.url}/widget.js' data-transports='{transports}' async></script>"
        "</head><body><h1>A shop</h1></body></html>"
    )

    def go() -> None:
        key, value = json.dumps(f"chatd:{standin.url}"), json.dumps(json.dumps(saved))
        # Once: a reload keeps what the widget saved since.
        ctx.add_init_script(f"localStorage.getItem({key}) || localStorage.setItem({key}, {value})")
        ctx.route(
            f"{SHOP}/",
            lambda route: route.fulfill(
                status=200,
                content_type="text/html",
                headers={"Content-Security-Policy": strict_csp(standin.url)},
                body=html,
            ),
        )
        page.goto(f"{SHOP}/")

    await browser.run(go)
    return ctx, page


def bubbles(page: Page) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = page.evaluate(BUBBLES)
    return result


def spoken(page: Page) -> list[dict[str, Any]]:
    """The replies as Chromium's accessibility tree has them (what a screen reader reads): each
    one's text, whether it is busy, and the politeness of the live region it is in, if any."""
    cdp = page.context.new_cdp_session(page)
    nodes = {n["nodeId"]: n for n in cdp.send("Accessibility.getFullAXTree")["nodes"]}
    cdp.detach()

    def prop(node: dict[str, Any], name: str) -> Any:
        found = [q["value"].get("value") for q in node.get("properties", []) if q["name"] == name]
        return found[0] if found else None

    def text(node: dict[str, Any]) -> str:
        if node["role"]["value"] == "StaticText":
            return str(node["name"]["value"])
        return "".join(text(nodes[c]) for c in node.get("childIds", []) if c in nodes)

    def live(node: dict[str, Any] | None) -> Any:
        while node is not None:
            if prop(node, "live") not in (None, "off"):
                return prop(node, "live")
            node = nodes.get(node.get("parentId", ""))
        return None

    return [
        {"text": text(n), "busy": bool(prop(n, "busy")), "live": live(n)}
        for n in nodes.values()
        if n["role"]["value"] == "listitem" and text(n).startswith("Assistant:")
    ]


async def test_a_streamed_reply_grows_in_place_and_its_stored_message_takes_its_place(
    browser: BrowserThread, nursery: trio.Nursery
) -> None:
    standin = await StandIn.start(nursery)
    ctx, page = await open_shop(browser, standin)
    conn = await standin.connection()
    assert conn.join == {"type": "join_chat", "sessionId": SID, "sessionToken": TOKEN, "lastSeq": 0}
    await conn.send(
        message(1, "user", "Which boots are waterproof?"),
        {"type": "bot_typing", "sessionId": SID, "isTyping": True},
    )
    bot = page.get_by_test_id("message-bot")

    def typing() -> None:
        open_widget(page)
        expect(page.get_by_test_id("message-user")).to_contain_text("Which boots")
        expect(page.get_by_test_id("bot-typing")).to_be_visible()
        page.evaluate(WATCH_LIVE)

    await browser.run(typing)
    await conn.send(delta("r1", 0, "Our **Trail"))

    def first_piece() -> list[dict[str, Any]]:
        expect(bot).to_have_text("Assistant: Our Trail")
        expect(page.get_by_test_id("bot-typing")).to_be_hidden()  # the bubble takes its place
        bot.evaluate("li => { li.dataset.first = 'yes' }")
        return bubbles(page)

    [first] = await browser.run(first_piece)
    assert first["busy"] == "true"
    assert first["caret"] == "P"
    assert first["live"] is False  # outside the live region: nothing announced per piece
    assert first["tags"] == ["p", "strong", "span"]  # **Trail, unclosed yet, shows bold

    await conn.send(
        delta("r1", 1, " X** boots"),
        delta("r1", 1, " X** boots"),  # repeats: ignored
        delta("r1", 0, "Our **Trail"),
        delta("r1", 2, " are waterproof:\n- leather\n- Gore"),
        delta("r1", 3, "-Tex"),
    )
    text = "Our Trail X boots are waterproof:leatherGore-Tex"

    def grown() -> tuple[list[dict[str, Any]], list[Any], list[dict[str, Any]]]:
        expect(bot.locator(".text")).to_have_text(text)
        expect(bot).to_have_attribute("data-first", "yes")  # the same bubble, grown
        return bubbles(page), page.evaluate("window.__live"), spoken(page)

    [streaming], live, [heard] = await browser.run(grown)
    assert heard == {"text": f"Assistant:{text}", "busy": True, "live": None}
    assert streaming["busy"] == "true"
    assert streaming["caret"] == "LI"  # after the last word, inside the list
    assert streaming["tags"] == ["p", "strong", "ul", "li", "li", "span"]
    assert live == []  # not one word announced while streaming

    final = "Our **Trail X** boots are waterproof:\n- leather\n- Gore-Tex"
    await conn.send(message(2, "bot", final, message_id="r1"))

    def stored() -> tuple[list[dict[str, Any]], list[Any], Any, list[dict[str, Any]]]:
        expect(bot.locator(".caret")).to_have_count(0)
        return (
            bubbles(page),
            page.evaluate("window.__live"),
            page.evaluate("typeof chatdMarkdown"),
            spoken(page),
        )

    [done], live, global_name, [heard] = await browser.run(stored)
    assert heard == {"text": f"Assistant:{text}", "busy": False, "live": "polite"}
    # Where the streaming bubble was: nothing jumped (within a pixel: positions are fractional,
    # rounded here, and scrolling may settle on the neighbouring fraction).
    assert abs(done.pop("top") - streaming["top"]) <= 1
    assert done == {
        "text": text,
        "busy": None,
        "caret": None,
        "live": True,
        "tags": ["p", "strong", "ul", "li", "li"],
    }
    assert live == [{"type": "childList", "added": [f"Assistant: {text}"]}]  # announced once
    assert global_name == "undefined"  # the renderer came in the widget's script, no global
    assert page.errors == []  # type: ignore[attr-defined]  # the strict CSP refused nothing
    await browser.run(ctx.close)


async def test_a_withdrawn_stream_leaves_no_bubble_and_the_fallback_follows(
    browser: BrowserThread, nursery: trio.Nursery
) -> None:
    standin = await StandIn.start(nursery)
    ctx, page = await open_shop(browser, standin)
    conn = await standin.connection()
    await browser.run(open_widget, page)
    await conn.send(message(1, "user", "Where is my order?"), delta("r1", 0, "Let me look"))
    bot = page.get_by_test_id("message-bot")
    await browser.run(lambda: expect(bot).to_have_text("Assistant: Let me look"))
    await conn.send(
        {"type": "message_stream_end", "sessionId": SID, "messageId": "r1", "reason": "failed"},
        delta("r1", 1, " up"),  # after the end: nothing to continue
    )
    await browser.run(lambda: expect(bot).to_have_count(0))
    fallback = "Sorry, the assistant is unavailable right now."
    await conn.send(message(2, "system", fallback, message_id="fallback"))

    def after() -> list[dict[str, Any]]:
        expect(bot).to_have_text(f"Assistant: {fallback}")
        return bubbles(page)

    [shown] = await browser.run(after)
    assert (shown["busy"], shown["live"]) == (None, True)
    await browser.run(ctx.close)


@pytest.mark.parametrize("transport", ["websocket", "sse"])
async def test_after_a_reconnect_the_snapshot_continues_the_stream_without_repeats(
    browser: BrowserThread, nursery: trio.Nursery, transport: str
) -> None:
    standin = await StandIn.start(nursery)
    ctx, page = await open_shop(browser, standin, transport)
    conn = await standin.connection()
    assert conn.kind == transport
    await browser.run(open_widget, page)
    await conn.send(message(1, "user", "Count for me"), delta("r1", 0, "One, "))
    await conn.send(delta("r1", 1, "two, "))
    bot = page.get_by_test_id("message-bot").locator(".text")
    await browser.run(lambda: expect(bot).to_have_text("One, two,"))
    await conn.close(1001)  # a restart: the widget comes back with lastSeq
    again = await standin.connection(timeout=15)
    assert str(again.join["lastSeq"]) == "1"
    await browser.run(lambda: expect(bot).to_have_text("One, two,"))  # kept meanwhile
    await again.send(
        snapshot("r1", 2, "One, two, three, "),  # what chatd has, up to piece 2
        delta("r1", 2, "three, "),  # a repeat of a piece the snapshot holds
        delta("r1", 3, "four."),
    )
    await browser.run(lambda: expect(bot).to_have_text("One, two, three, four."))
    await again.send(message(2, "bot", "One, two, three, four.", message_id="r1"))

    def stored() -> list[dict[str, Any]]:
        expect(page.get_by_test_id("message-bot").locator(".caret")).to_have_count(0)
        return bubbles(page)

    [done] = await browser.run(stored)
    assert (done["text"], done["busy"]) == ("One, two, three, four.", None)
    await browser.run(ctx.close)


async def test_replies_streaming_at_once_each_have_a_bubble_in_the_order_they_began(
    browser: BrowserThread, nursery: trio.Nursery
) -> None:
    standin = await StandIn.start(nursery)
    ctx, page = await open_shop(browser, standin)
    conn = await standin.connection()
    await browser.run(open_widget, page)
    await conn.send(
        message(1, "user", "Compare them"),
        delta("a", 0, "Alpha "),
        snapshot("b", 1, "Beta one, "),  # joined while b streams: its text so far
        delta("a", 1, "one"),
        delta("b", 2, "two"),
    )
    texts = page.get_by_test_id("message-bot").locator(".text")
    await browser.run(lambda: expect(texts).to_have_text(["Alpha one", "Beta one, two"]))
    await conn.send(message(2, "bot", "Beta one, two", message_id="b"))  # b is stored first
    await browser.run(lambda: expect(texts).to_have_text(["Beta one, two", "Alpha one"]))
    await conn.send(message(3, "bot", "Alpha one", message_id="a"))

    def stored() -> list[dict[str, Any]]:
        expect(page.get_by_test_id("message-bot").locator(".caret")).to_have_count(0)
        return bubbles(page)

    shown = await browser.run(stored)
    assert [(b["text"], b["busy"]) for b in shown] == [("Beta one, two", None), ("Alpha one", None)]
    await browser.run(ctx.close)


async def test_the_list_stays_put_while_the_shopper_reads_above_and_follows_at_the_bottom(
    browser: BrowserThread, nursery: trio.Nursery
) -> None:
    standin = await StandIn.start(nursery)
    ctx, page = await open_shop(browser, standin)
    conn = await standin.connection()
    history = [
        message(
            seq, "user" if seq % 2 else "bot", f"Message {seq}: about boots, sizes and returns."
        )
        for seq in range(1, 31)
    ]
    await conn.send(*history)
    await browser.run(open_widget, page)
    await browser.run(lambda: expect(page.get_by_test_id("message-user")).to_have_count(15))
    await conn.send(delta("r1", 0, "First line\n"))
    bot = page.get_by_test_id("message-bot").last.locator(".text")
    await browser.run(lambda: expect(bot).to_have_text("First line"))
    assert (await browser.run(page.evaluate, LOG))["gap"] < 2  # at the bottom, it follows

    def read_above() -> dict[str, Any]:
        page.evaluate(f"() => {{ {ROOT}.querySelector('.log').scrollTop = 300; }}")
        page.wait_for_timeout(200)  # the scroll event
        seq10 = page.get_by_test_id("message-user").nth(5)  # Message 11
        return {"log": page.evaluate(LOG), "y": seq10.bounding_box()}

    before = await browser.run(read_above)
    assert before["log"]["top"] == 300
    lines = "".join(f"Line {n} of a long answer\n" for n in range(2, 12))
    await conn.send(delta("r1", 1, lines))

    def grown() -> dict[str, Any]:
        expect(bot).to_contain_text("Line 11 of a long answer")
        page.wait_for_timeout(100)  # another frame, had it wanted to scroll
        return {
            "log": page.evaluate(LOG),
            "y": page.get_by_test_id("message-user").nth(5).bounding_box(),
        }

    after = await browser.run(grown)
    assert after["log"]["top"] == 300  # not pulled down to the new text
    assert after["y"] == before["y"]
    assert after["log"]["gap"] > before["log"]["gap"]  # the text grew below, out of view
    await conn.send(message(31, "bot", "First line\n" + lines, message_id="r1"))
    stored = await browser.run(grown)
    assert stored["log"]["top"] == 300
    assert stored["y"] == before["y"]

    def back_down() -> dict[str, Any]:
        page.evaluate(
            f"() => {{ const log = {ROOT}.querySelector('.log'); log.scrollTop = log.scrollHeight; }}"
        )
        page.wait_for_timeout(200)
        return page.evaluate(LOG)

    assert (await browser.run(back_down))["gap"] < 2
    await conn.send(delta("r2", 0, "".join(f"More {n}\n" for n in range(8))))
    last = page.get_by_test_id("message-bot").last.locator(".text")
    await browser.run(lambda: expect(last).to_contain_text("More 7"))
    await browser.run(page.wait_for_timeout, 100)
    assert (await browser.run(page.evaluate, LOG))["gap"] < 2  # back at the bottom: it follows
    await browser.run(ctx.close)


async def test_long_poll_shows_the_snapshots_and_sends_back_the_stream_version(
    browser: BrowserThread, nursery: trio.Nursery
) -> None:
    standin = await StandIn.start(nursery)
    ctx, page = await open_shop(browser, standin, "longpoll")
    await browser.run(open_widget, page)
    bot = page.get_by_test_id("message-bot")
    streaming = [{"messageId": "r1", "replyTo": "m1", "index": 0, "text": "Hel"}]
    standin.answer_poll(
        {
            "messages": [message(1, "user", "Hi")["message"]],
            "streaming": streaming,
            "streamVersion": 1,
        }
    )
    await browser.run(lambda: expect(bot).to_have_text("Assistant: Hel"))
    streaming = [
        {"messageId": "r1", "replyTo": "m1", "index": 2, "text": "Hello **wor"},
        {"messageId": "r2", "replyTo": "m1", "index": 0, "text": "Checking"},
    ]
    standin.answer_poll({"streaming": streaming, "streamVersion": 2})
    texts = bot.locator(".text")
    await browser.run(lambda: expect(texts).to_have_text(["Hello wor", "Checking"]))
    final = message(2, "bot", "Hello **world**", message_id="r1")["message"]
    standin.answer_poll({"messages": [final], "streaming": [], "streamVersion": 3})  # r2 gone

    def stored() -> list[dict[str, Any]]:
        expect(texts).to_have_text(["Hello world"])
        return bubbles(page)

    [done] = await browser.run(stored)
    assert (done["busy"], done["tags"]) == (None, ["p", "strong"])
    with trio.fail_after(5):
        while len(standin.polls) < 5:
            await trio.sleep(0.05)
    versions = [poll.get("streamVersion") for poll in standin.polls[:5]]
    assert versions == ["0", "0", "1", "2", "3"]  # the first poll answers at once, with 0
    await browser.run(ctx.close)


async def test_long_poll_against_a_chatd_without_streams_polls_without_the_version(
    browser: BrowserThread, nursery: trio.Nursery
) -> None:
    standin = await StandIn.start(nursery)
    standin.refuse_stream_version = True
    ctx, page = await open_shop(browser, standin, "longpoll")
    await browser.run(open_widget, page)
    standin.answer_poll({"messages": [message(1, "bot", "Still *here*")["message"]]})
    bot = page.get_by_test_id("message-bot").locator(".text")
    await browser.run(lambda: expect(bot).to_have_text("Still here"))
    assert "streamVersion" in standin.polls[0]
    assert all("streamVersion" not in poll for poll in standin.polls[1:])
    await browser.run(ctx.close)


@pytest.mark.parametrize("motion", ["no-preference", "reduce"])
async def test_the_caret_blinks_unless_motion_is_reduced(
    browser: BrowserThread, nursery: trio.Nursery, motion: str
) -> None:
    standin = await StandIn.start(nursery)
    ctx, page = await open_shop(browser, standin, reduced_motion=motion)
    conn = await standin.connection()
    await browser.run(open_widget, page)
    await conn.send(delta("r1", 0, "Thinking it over"))
    caret = page.get_by_test_id("message-bot").locator(".caret")
    await browser.run(lambda: expect(caret).to_be_visible())
    animation = await browser.run(caret.evaluate, "c => getComputedStyle(c).animationName")
    assert animation == ("none" if motion == "reduce" else "caret")
    await browser.run(ctx.close)


@pytest.mark.parametrize("viewport", [DESKTOP, MOBILE], ids=["desktop", "mobile"])
async def test_screenshots_of_a_streaming_reply(
    browser: BrowserThread, nursery: trio.Nursery, viewport: dict[str, int]
) -> None:
    standin = await StandIn.start(nursery)
    ctx, page = await open_shop(browser, standin, viewport=viewport)
    conn = await standin.connection()
    await browser.run(open_widget, page)
    await conn.send(
        message(1, "user", "How do I return my boots?"),
        delta("r1", 0, "Returns are **free** within 30 days:\n\n1. Open "),
        delta("r1", 1, "[your orders](https://shop.example/orders)\n2. Choose *Return* and print "),
        delta("r1", 2, "the label with `RET-1042`\n3. Drop the parcel at any post"),
    )
    bot = page.get_by_test_id("message-bot")
    name = f"widget-streaming-{'mobile' if viewport is MOBILE else 'desktop'}.png"
    axe = await trio.to_thread.run_sync(axe_source)

    def shoot() -> Any:
        expect(bot).to_contain_text("Drop the parcel at any post")
        expect(bot.locator("a")).to_have_attribute("href", "https://shop.example/orders")
        page.screenshot(path=str(SCREENSHOTS / name))
        return page.evaluate(axe + "\n;axe.run(document)")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    audit = await browser.run(shoot)
    assert (SCREENSHOTS / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = [v["id"] for v in audit["violations"] if v["impact"] in ("serious", "critical")]
    assert bad == []  # mid-stream too: the busy bubble, its caret, the Markdown
    await browser.run(ctx.close)
