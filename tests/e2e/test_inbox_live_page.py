"""The inbox, live, in a real Chromium beside a shopper's widget: unread counts that survive a
reload, the agent's typing shown to the shopper ("Anna is typing…"), and the alerts (a beep and
a browser notification) for a new handoff and for a shopper writing in the agent's conversation
while the agent looks elsewhere; the widget's "Sent" under a message whose streamed answer
grows. Notifications are real: the context is granted the permission, and an init script in the
test's page records each `new Notification(...)` (and each beep's oscillator) on its way to the
browser. Screenshots go to build/screenshots/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from playwright.sync_api import Page, expect

from chatd.core.staff import Role
from tests.browser import BrowserThread, axe_source
from tests.e2e.test_inbox_page import sign_in
from tests.e2e.test_widget import DESKTOP, MOBILE, SCREENSHOTS, SHOP, open_shop, open_widget, say
from tests.integration.test_delivery import Pipeline, open_pipeline
from tests.sink import Reply, Stream, Wait, chunk
from tests.staff import add_agent

pytestmark = pytest.mark.timeout(180)

RECORD = """
window.__notes = [];
window.__beeps = 0;
if (window.Notification) {
  const Real = window.Notification;
  const Recorded = function (title, options) {
    window.__notes.push({ title, body: options && options.body });
    return new Real(title, options);
  };
  Recorded.requestPermission = (...args) => Real.requestPermission(...args);
  Object.defineProperty(Recorded, "permission", { get: () => Real.permission });
  window.Notification = Recorded;
}
const start = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function (...args) { window.__beeps += 1; return start.apply(this, args); };
"""


@pytest.fixture
async def shop(nursery: trio.Nursery, database_url: str) -> AsyncIterator[Pipeline]:
    pipe = await open_pipeline(
        nursery,
        database_url,
        websocket={"allowed_origins": SHOP, "heartbeat_interval_seconds": 2},
        chat={"rate_limit_max": 100},
        n8n={"stream_idle_timeout_seconds": 20},
    )
    pipe.sink.behave(Reply("The bot answers."))
    yield pipe
    pipe.chatd.stop.set()


def notes(page: Page, count: int | None = None) -> list[dict[str, Any]]:
    """The notifications created so far (once there are `count`: the page's CSP keeps
    wait_for_function out)."""
    for _ in range(100):
        found: list[dict[str, Any]] = page.evaluate("window.__notes")
        if count is None or len(found) >= count:
            return found
        page.wait_for_timeout(100)
    raise AssertionError(f"{len(found)} notifications, not {count}")


async def test_unread_typing_and_alerts(browser: BrowserThread, shop: Pipeline) -> None:
    anna = await add_agent(shop.chatd.services.pool, "Anna", Role.AGENT)
    _, shopper = await open_shop(browser, shop.chatd.url)
    ctx, agent = await browser.new_page(
        viewport=DESKTOP, permissions=["local-network-access", "notifications"]
    )
    await browser.run(ctx.add_init_script, RECORD)
    axe = await trio.to_thread.run_sync(axe_source)
    await browser.run(sign_in, agent, shop.chatd.url, anna.email)

    def alerts_on() -> None:
        agent.get_by_test_id("alerts-toggle").check()
        assert agent.evaluate("localStorage.getItem('chatd.inbox.alerts')") == "on"
        assert agent.evaluate("Notification.permission") == "granted"
        expect(agent.get_by_test_id("alerts-note")).to_have_text("")

    def shopper_asks() -> None:
        open_widget(shopper)
        say(shopper, "Hello")
        expect(shopper.get_by_test_id("message-bot")).to_contain_text("The bot answers.")
        say(shopper, "Is anyone there?")
        expect(shopper.get_by_test_id("message-bot")).to_have_count(2)
        shopper.get_by_test_id("talk-to-person").click()
        expect(shopper.get_by_test_id("message-bot").last).to_contain_text("You asked for a person")

    def agent_is_told() -> None:
        agent.get_by_test_id("tab-waiting").click()
        item = agent.get_by_test_id("conversation")
        expect(item).to_have_count(1)
        expect(item.get_by_test_id("unread")).to_have_text("2 unread")  # the shopper's two
        (note,) = notes(agent, 1)
        assert note["title"] == "A shopper asks for a person"
        assert agent.evaluate("window.__beeps") == 1
        assert agent.title() == "(2) chatd inbox"
        agent.screenshot(path=str(SCREENSHOTS / "inbox-unread-alerts.png"))
        audit = agent.evaluate(axe + "\n;axe.run(document)")
        serious = [v["id"] for v in audit["violations"] if v["impact"] in ("serious", "critical")]
        assert serious == []

    def agent_reads_then_reloads() -> None:
        agent.get_by_test_id("conversation").click()
        expect(agent.get_by_test_id("message-user").last).to_contain_text("Is anyone there?")
        expect(agent.get_by_test_id("unread")).to_have_count(0)
        agent.wait_for_timeout(600)  # the read mark goes a moment later (once per burst)
        agent.reload()
        expect(agent.get_by_test_id("live-status")).to_have_text("Live")
        agent.get_by_test_id("tab-waiting").click()
        expect(agent.get_by_test_id("conversation")).to_have_count(1)
        expect(agent.get_by_test_id("unread")).to_have_count(0)  # kept on the server
        expect(agent.get_by_test_id("alerts-toggle")).to_be_checked()  # kept in localStorage

    def agent_takes_and_types() -> None:
        agent.get_by_test_id("conversation").click()
        agent.get_by_test_id("take").click()
        expect(agent.get_by_test_id("conversation-state")).to_have_text("With Anna")
        agent.get_by_test_id("reply-input").press_sequentially("Let me check", delay=20)
        typing = shopper.get_by_test_id("bot-typing")
        expect(typing).to_be_visible()
        expect(typing).to_have_text("Anna is typing…")
        shopper.screenshot(path=str(SCREENSHOTS / "widget-agent-typing.png"))
        agent.get_by_test_id("reply-send").click()
        expect(shopper.get_by_test_id("message-agent")).to_contain_text("Let me check")
        expect(typing).to_be_hidden()

    def chat_id() -> str:
        return str(agent.get_by_test_id("conversation").get_attribute("data-session"))

    def shopper_writes_while_agent_looks_away() -> None:
        agent.set_viewport_size(MOBILE)  # where Back shows: the conversation is closed
        agent.get_by_role("button", name="Back to the list").click()
        agent.set_viewport_size(DESKTOP)
        agent.get_by_test_id("tab-mine").click()
        say(shopper, "Thanks, waiting")
        item = agent.get_by_test_id("conversation")
        expect(item.get_by_test_id("unread")).to_have_text("1 unread")
        # (The page was reloaded since the first: its record starts again.)
        (note,) = notes(agent, 1)
        assert (note["title"], note["body"]) == (f"Guest {chat_id()[:8]} wrote", "Thanks, waiting")
        assert agent.evaluate("window.__beeps") == 1
        # Looking at it: no alert, and it is read at once.
        item.click()
        say(shopper, "Still there?")
        expect(agent.get_by_test_id("message-user").last).to_contain_text("Still there?")
        agent.wait_for_timeout(500)
        assert len(notes(agent)) == 1
        expect(agent.get_by_test_id("unread")).to_have_count(0)

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await browser.run(alerts_on)
    await browser.run(shopper_asks)
    await browser.run(agent_is_told)
    await browser.run(agent_reads_then_reloads)
    await browser.run(agent_takes_and_types)
    await browser.run(shopper_writes_while_agent_looks_away)
    assert shopper.errors == []  # type: ignore[attr-defined]
    errors = agent.errors  # type: ignore[attr-defined]
    assert [e for e in errors if "status of 401" not in e] == []


async def test_a_message_shows_sent_while_its_streamed_answer_grows(
    browser: BrowserThread, shop: Pipeline
) -> None:
    shop.sink.behave(
        Stream([chunk("begin"), chunk("item", "agent", "Your order "), Wait(),
                chunk("item", "agent", "ships today."), chunk("end")])
    )  # fmt: skip
    ctx, page = await open_shop(browser, shop.chatd.url)

    def streaming() -> None:
        open_widget(page)
        say(page, "Where is my order?")
        expect(page.locator(".streaming")).to_contain_text("Your order")
        status = page.get_by_test_id("message-status")
        expect(status).to_have_attribute("data-status", "sent")
        expect(status).to_have_text("Sent")

    def stored() -> None:
        expect(page.get_by_test_id("message-bot")).to_contain_text("Your order ships today.")
        expect(page.get_by_test_id("message-status")).to_have_attribute("data-status", "delivered")

    await browser.run(streaming)
    shop.sink.release()
    await browser.run(stored)
    assert page.errors == []  # type: ignore[attr-defined]
    await browser.run(ctx.close)
