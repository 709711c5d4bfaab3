"""The fan-out's buffers (chatd/realtime/hub.py): order, dedupe by seq, bounds, redundant frames."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import trio

from chatd.core.messages import Message, MessageStatus
from chatd.realtime.hub import Closing, Event, Hub, SlowConsumer, Subscriber

SESSION = "s1"


def row(seq: int, sender: str = "bot") -> Message:
    return Message(
        id=f"m{seq}",
        session_id=SESSION,
        sender_type=sender,
        content=f"message {seq}",
        message_type="text",
        metadata={},
        status=MessageStatus.DELIVERED,
        seq=seq,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def typing(is_typing: bool) -> Event:
    return Event({"type": "bot_typing", "sessionId": SESSION, "isTyping": is_typing})


def subscribed(hub: Hub, name: str = "c1", limit: int = 10) -> Subscriber:
    subscriber = Subscriber(name, limit)
    hub.subscribe(SESSION, subscriber)
    return subscriber


async def kinds(subscriber: Subscriber) -> list[tuple[str, Any]]:
    events = await subscriber.get(max_wait=0)
    return [(e.type, e.seq if e.seq is not None else e.data.get("isTyping")) for e in events]


async def test_every_subscriber_gets_each_message_once_in_order() -> None:
    hub = Hub()
    a, b = subscribed(hub, "a"), subscribed(hub, "b")
    for seq in (1, 2, 2, 1, 3):  # the actor's publish and the notification's: sent once
        hub.publish_message(row(seq, "user"))
    expected = [("new_message", 1), ("new_message", 2), ("new_message", 3)]
    assert await kinds(a) == expected
    assert await kinds(b) == expected


async def test_a_typing_false_right_behind_a_reply_is_not_queued() -> None:
    hub = Hub()
    subscriber = subscribed(hub)
    hub.publish(SESSION, typing(True))
    hub.publish_message(row(1))
    hub.publish(SESSION, typing(False))
    hub.publish(SESSION, typing(False))
    assert await kinds(subscriber) == [("bot_typing", True), ("new_message", 1)]


async def test_a_typing_false_after_a_reply_already_sent_is_not_sent_again() -> None:
    hub = Hub()
    subscriber = subscribed(hub)
    hub.publish(SESSION, typing(True))
    hub.publish_message(row(1))
    assert await kinds(subscriber) == [("bot_typing", True), ("new_message", 1)]
    hub.publish(SESSION, typing(False))  # the reply's own notification, routed later
    hub.publish_message(row(2, "user"))
    assert await kinds(subscriber) == [("new_message", 2)]
    hub.publish(SESSION, typing(True))  # a stale true still reaches it, so its false does too
    hub.publish(SESSION, typing(False))
    assert await kinds(subscriber) == [("bot_typing", True), ("bot_typing", False)]


def test_published_tells_which_notifications_need_a_read() -> None:
    hub = Hub()
    assert hub.published(SESSION, 1)  # no local clients: nothing to read
    subscribed(hub)
    hub.publish_message(row(2))
    assert [hub.published(SESSION, seq) for seq in (1, 2, 3)] == [True, True, False]


@pytest.mark.parametrize("before", ["user message", "typing true", "nothing"])
async def test_a_typing_false_after_anything_else_is_sent(before: str) -> None:
    hub = Hub()
    subscriber = subscribed(hub)
    if before == "user message":
        hub.publish_message(row(1, "user"))
    elif before == "typing true":
        hub.publish(SESSION, typing(True))
    hub.publish(SESSION, typing(False))
    assert (await kinds(subscriber))[-1] == ("bot_typing", False)


async def test_a_full_buffer_ends_the_subscriber_and_frees_it() -> None:
    hub = Hub()
    subscriber = subscribed(hub, limit=2)
    for seq in (1, 2, 3):
        hub.publish_message(row(seq))
    with pytest.raises(SlowConsumer):
        await subscriber.get(max_wait=0)


async def test_get_waits_for_an_event_and_close_ends_it() -> None:
    hub = Hub()
    subscriber = subscribed(hub)
    async with trio.open_nursery() as nursery:
        got: list[list[Event]] = []

        async def wait() -> None:
            got.append(await subscriber.get())

        nursery.start_soon(wait)
        await trio.sleep(0.01)
        assert got == []
        hub.publish_message(row(1))
    assert [e.seq for e in got[0]] == [1]
    hub.close()
    with pytest.raises(Closing):
        await subscriber.get()
