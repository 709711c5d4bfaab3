"""The staff inbox in a real Chromium beside a shopper's widget (two browser contexts): the
shopper asks for a person, the agent sees it arrive live, takes it, replies; the shopper sees
the agent's name; n8n (the sink) is not called meanwhile; hand back, and the bot answers again.
Screenshots of the inbox (desktop and phone) go to build/screenshots/."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
from playwright.sync_api import Page, expect

from chatd.core.staff import Role
from tests.browser import BrowserThread
from tests.e2e.test_widget import DESKTOP, MOBILE, SCREENSHOTS, SHOP, open_shop, open_widget, say
from tests.integration.test_delivery import Pipeline, open_pipeline
from tests.sink import Reply
from tests.staff import PASSWORD, add_agent

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def shop(nursery: trio.Nursery, database_url: str) -> AsyncIterator[Pipeline]:
    pipe = await open_pipeline(
        nursery,
        database_url,
        websocket={"allowed_origins": SHOP, "heartbeat_interval_seconds": 2},
        chat={"rate_limit_max": 100},
    )
    pipe.sink.behave(Reply("The bot answers."))
    yield pipe
    pipe.chatd.stop.set()


def sign_in(page: Page, url: str, email: str) -> None:
    page.goto(f"{url}/inbox")
    page.get_by_test_id("email").fill(email)
    page.get_by_test_id("password").fill(PASSWORD)
    page.get_by_test_id("sign-in").click()
    expect(page.get_by_test_id("me")).to_contain_text("Anna")
    expect(page.get_by_test_id("live-status")).to_have_text("Live")


async def test_handoff_takeover_reply_and_handback(browser: BrowserThread, shop: Pipeline) -> None:
    anna = await add_agent(shop.chatd.services.pool, "Anna", Role.AGENT)
    _, shopper = await open_shop(browser, shop.chatd.url)
    _, agent = await browser.new_page(viewport=DESKTOP)
    await browser.run(sign_in, agent, shop.chatd.url, anna.email)

    def shopper_asks() -> None:
        open_widget(shopper)
        say(shopper, "Hello")
        expect(shopper.get_by_test_id("message-bot")).to_contain_text("The bot answers.")
        shopper.get_by_test_id("talk-to-person").click()
        expect(shopper.get_by_test_id("message-bot").last).to_contain_text("You asked for a person")

    def agent_takes_and_replies() -> None:
        agent.get_by_test_id("tab-waiting").click()
        item = agent.get_by_test_id("conversation")
        expect(item).to_have_count(1)  # arrived live, without a reload
        item.click()
        expect(agent.get_by_test_id("message-user")).to_contain_text("Hello")
        agent.get_by_test_id("take").click()
        expect(agent.get_by_test_id("conversation-state")).to_have_text("With Anna")
        agent.get_by_test_id("reply-input").fill("Hi, Anna here. How can I help?")
        agent.get_by_test_id("reply-send").click()
        expect(agent.get_by_test_id("message-agent")).to_contain_text("Anna here")

    def shopper_sees_anna() -> None:
        expect(shopper.get_by_test_id("message-bot").last).to_contain_text("Anna joined the chat")
        expect(shopper.get_by_test_id("message-agent")).to_contain_text("Hi, Anna here.")
        expect(shopper.get_by_test_id("agent-name")).to_have_text("Anna")
        say(shopper, "My parcel is late")
        expect(agent.get_by_test_id("message-user").last).to_contain_text("My parcel is late")

    await browser.run(shopper_asks)
    calls = len(shop.sink.requests)
    assert calls == 1
    await browser.run(agent_takes_and_replies)
    await browser.run(shopper_sees_anna)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await browser.run(lambda: agent.screenshot(path=str(SCREENSHOTS / "inbox-desktop.png")))
    await browser.run(lambda: shopper.screenshot(path=str(SCREENSHOTS / "widget-agent.png")))
    await trio.sleep(0.3)
    assert len(shop.sink.requests) == calls  # the bot was not called while Anna held the chat

    def phone() -> None:
        agent.set_viewport_size(MOBILE)
        expect(agent.get_by_test_id("reply-input")).to_be_visible()
        agent.screenshot(path=str(SCREENSHOTS / "inbox-phone-conversation.png"))
        agent.get_by_role("button", name="Back to the list").click()
        expect(agent.get_by_test_id("tab-mine")).to_be_visible()
        agent.get_by_test_id("tab-mine").click()
        expect(agent.get_by_test_id("conversation")).to_have_count(1)
        agent.screenshot(path=str(SCREENSHOTS / "inbox-phone-list.png"))
        agent.get_by_test_id("conversation").click()
        agent.set_viewport_size(DESKTOP)

    def hand_back() -> None:
        agent.get_by_test_id("hand-back").click()
        expect(agent.get_by_test_id("conversation-state")).to_have_text("Bot answers")
        say(shopper, "Where is my order?")
        expect(shopper.get_by_test_id("message-bot").last).to_contain_text("The bot answers.")

    await browser.run(phone)
    await browser.run(hand_back)
    assert len(shop.sink.requests) == calls + 1
    assert shopper.errors == []  # type: ignore[attr-defined]
    # Chromium logs the page's first GET /api/staff/me (401: not signed in yet) as an error.
    errors = agent.errors  # type: ignore[attr-defined]
    assert [e for e in errors if "status of 401" not in e] == []
    assert len(errors) <= 1
