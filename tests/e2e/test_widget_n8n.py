"""The whole way, all real: a shopper types in chatd's widget (real Chromium, a shop page on
another origin), chatd delivers to the shipped agent workflow in a real n8n (tests/n8n.py), whose
AI Agent streams the answer of the OpenAI-compatible stand-in (tests/llm_standin.py) slowly,
token by token, back through chatd to the widget.

The stand-in holds its answer after a few tokens until the test has seen text in the page, so a
reply shown only once the stream ended would fail here.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import trio
from playwright.sync_api import expect

from tests.browser import BrowserThread
from tests.e2e.test_widget import SHOP, open_shop, open_widget, say
from tests.integration.test_delivery import open_pipeline
from tests.llm_standin import LlmStandin, answer_for
from tests.n8n import ChatdN8n

# Long: the first n8n test of a run waits for n8n's start (40-90 s on 2 busy cores).
pytestmark = [pytest.mark.n8n, pytest.mark.timeout(400)]

HELD_TOKENS = 4  # "**Thanks for asking!** You wrote:" so far, then the model waits
QUESTION = "Where is my order?"
# What the reply reads as, rendered (no Markdown marks left).
SHOWN = [
    "Thanks for asking!",
    f'You wrote: "{QUESTION}"',
    "Orders ship within 2 days",
    "Returns are free for 30 days: reply RETURN",
    "See your orders for details.",
]
REPLY = """() => [...document.querySelector('chatd-widget').shadowRoot
  .querySelectorAll('[data-testid=message-bot]')].map((li) => ({
    text: li.querySelector('.text').textContent,
    busy: li.getAttribute('aria-busy'),
    tags: [...li.querySelectorAll('.text *')].map((e) => e.tagName.toLowerCase()),
    hrefs: [...li.querySelectorAll('a')].map((a) => a.getAttribute('href')),
  }))"""


async def test_the_widget_shows_a_real_agents_streamed_markdown_reply(
    browser: BrowserThread,
    real_n8n: ChatdN8n,
    llm_socket: socket.socket,
    nursery: trio.Nursery,
    database_url: str,
    tmp_path: Path,
) -> None:
    standin = await LlmStandin.start(nursery, sock=llm_socket)
    standin.token_delay = 0.1  # about 3 s for the answer's 30 tokens, as a model writes
    standin.hold_after(HELD_TOKENS)
    pipe = await open_pipeline(
        nursery,
        database_url,
        websocket={"allowed_origins": SHOP},
        n8n={
            "webhook_url": real_n8n.url("agent"),
            "webhook_secret": real_n8n.secret,
            "timeout_seconds": 30,
        },
    )
    ctx, page = await open_shop(browser, pipe.chatd.url)

    def ask() -> list[dict[str, Any]]:
        open_widget(page)
        say(page, QUESTION)
        bot = page.get_by_test_id("message-bot")
        expect(bot).to_have_attribute("aria-busy", "true", timeout=90_000)  # n8n's first start
        expect(bot).to_contain_text("Thanks for asking!")
        shown: list[dict[str, Any]] = page.evaluate(REPLY)
        page.screenshot(path=str(tmp_path / "widget-n8n-agent-streaming.png"))
        return shown

    early = await browser.run(ask)
    finished_early = standin.finished[0]
    standin.release()

    def finish() -> dict[str, Any]:
        bot = page.get_by_test_id("message-bot")
        expect(bot).to_contain_text(SHOWN[-1], timeout=30_000)
        expect(bot).not_to_have_attribute("aria-busy", "true")
        expect(bot.locator("code")).to_have_text("RETURN")
        page.screenshot(path=str(tmp_path / "widget-n8n-agent.png"))
        stored: list[dict[str, Any]] = page.evaluate(REPLY)
        page.reload()
        page.get_by_test_id("chat-bubble").click()
        expect(page.get_by_test_id("message-bot")).to_contain_text(SHOWN[-1])
        reloaded: list[dict[str, Any]] = page.evaluate(REPLY)
        return {"stored": stored, "reloaded": reloaded}

    seen = await browser.run(finish)
    await browser.run(ctx.close)

    # The first text was on the page while the model was still writing (held back).
    assert not finished_early, "the widget showed text only after the model finished"
    (first,) = early
    assert first["busy"] == "true"
    assert first["text"].startswith("Thanks for asking!")
    assert SHOWN[-1] not in first["text"]
    # The finished reply, whole, its Markdown rendered as elements; the same after a reload.
    for when in ("stored", "reloaded"):
        (reply,) = seen[when]
        assert reply["busy"] is None
        assert all(part in reply["text"] for part in SHOWN), reply["text"]
        assert "**" not in reply["text"]
        assert "`" not in reply["text"]
        assert reply["tags"] == ["p", "strong", "ul", "li", "em", "li", "code", "p", "a"]
        assert reply["hrefs"] == ["https://shop.example/orders"]
    assert page.errors == []  # type: ignore[attr-defined]  # the strict CSP refused nothing
    # Stored once, as the model wrote it; one delivery, one model call.
    async with pipe.chatd.services.pool.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT sender_type, content, status FROM chat_messages ORDER BY seq"
            )
        ).fetchall()
    assert [(r["sender_type"], r["content"], r["status"]) for r in rows] == [
        ("user", QUESTION, "delivered"),
        ("bot", answer_for(QUESTION), "delivered"),
    ]
    assert len(standin.requests) == 1
    pipe.chatd.stop.set()
