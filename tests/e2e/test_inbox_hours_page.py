"""Nobody there, in a real Chromium: outside business hours the shopper who asks for a person
reads when the shop is back and leaves an email in the widget's form (a bad one is refused);
the agent's inbox shows the email and who is online. Screenshots go to build/screenshots/."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
from playwright.sync_api import expect

from chatd.core.staff import Role
from tests.browser import BrowserThread
from tests.e2e.test_inbox_page import sign_in
from tests.e2e.test_widget import DESKTOP, MOBILE, SCREENSHOTS, SHOP, open_shop, open_widget, say
from tests.integration.test_delivery import Pipeline, open_pipeline
from tests.integration.test_inbox_hours import closed_now
from tests.sink import Reply
from tests.staff import add_agent

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def shop(nursery: trio.Nursery, database_url: str) -> AsyncIterator[Pipeline]:
    pipe = await open_pipeline(
        nursery,
        database_url,
        websocket={"allowed_origins": SHOP, "heartbeat_interval_seconds": 2},
        inbox={"holidays": closed_now(), "handoff_check_interval_seconds": 0.2},
    )
    pipe.sink.behave(Reply("The bot answers."))
    yield pipe
    pipe.chatd.stop.set()


async def test_nobody_there_email_form_and_the_inbox(
    browser: BrowserThread, shop: Pipeline
) -> None:
    anna = await add_agent(shop.chatd.services.pool, "Anna", Role.AGENT)
    _, shopper = await open_shop(browser, shop.chatd.url, viewport=MOBILE)

    def shopper_asks_and_leaves_an_email() -> None:
        open_widget(shopper)
        say(shopper, "Hello")
        expect(shopper.get_by_test_id("message-bot")).to_contain_text("The bot answers.")
        shopper.get_by_test_id("talk-to-person").click()
        notice = shopper.get_by_test_id("message-bot").last
        expect(notice).to_contain_text("No one is available right now — we are back")
        form = shopper.get_by_test_id("contact-form")
        expect(form).to_be_visible()
        shopper.get_by_test_id("contact-email").fill("not an email")
        shopper.get_by_test_id("contact-send").click()
        expect(shopper.get_by_test_id("contact-error")).to_have_text(
            "Please enter a valid email address."
        )
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shopper.screenshot(path=str(SCREENSHOTS / "widget-nobody-there.png"))
        shopper.get_by_test_id("contact-email").fill("sam@shop.example")
        shopper.get_by_test_id("contact-send").click()
        expect(shopper.get_by_test_id("message-bot").last).to_contain_text(
            "Thanks! We will answer at sam@shop.example."
        )
        expect(form).to_have_count(0)

    await browser.run(shopper_asks_and_leaves_an_email)
    async with shop.chatd.services.pool.connection() as conn:
        row = await (
            await conn.execute("SELECT guest_email, conversation_state FROM chat_sessions")
        ).fetchone()
    assert row == {"guest_email": "sam@shop.example", "conversation_state": "waiting"}

    _, agent = await browser.new_page(viewport=DESKTOP)

    def agent_sees_the_email_and_who_is_online() -> None:
        sign_in(agent, shop.chatd.url, anna.email)
        expect(agent.get_by_test_id("presence")).to_contain_text("Online: Anna")
        expect(agent.get_by_test_id("presence")).to_contain_text("closed, back")
        agent.get_by_test_id("tab-waiting").click()
        item = agent.get_by_test_id("conversation")
        expect(item).to_have_count(1)
        expect(item).to_contain_text("sam@shop.example")
        item.click()
        expect(agent.get_by_test_id("context")).to_contain_text("sam@shop.example")
        agent.screenshot(path=str(SCREENSHOTS / "inbox-nobody-there.png"))

    await browser.run(agent_sees_the_email_and_who_is_online)
    # The reload brings the form back only if no email was left: it stays gone.
    await browser.run(shopper.reload)
    await browser.run(lambda: open_widget(shopper))
    await browser.run(
        lambda: expect(shopper.get_by_test_id("message-bot").last).to_contain_text("Thanks!")
    )
    assert await browser.run(lambda: shopper.get_by_test_id("contact-form").count()) == 0
    assert shopper.errors == []  # type: ignore[attr-defined]
