"""The event router's repair: when notifications may have been lost (LISTEN reconnected, the
inbox overflowed), every local feed is brought up to date from the database."""

from __future__ import annotations

import json

import pytest
import trio

from chatd.realtime.hub import Hub, Subscriber
from chatd.realtime.router import INBOX, EventRouter
from tests.chat import Session, new_session, send
from tests.conftest import RunningChatd


async def _sessions_with_messages(chatd: RunningChatd, counts: list[int]) -> list[Session]:
    sessions = []
    async with chatd.client() as client:
        for count in counts:
            session = await new_session(client)
            for n in range(count):
                response = await send(client, session, f"message {n + 1}")
                assert response.status_code == 200, response.text
            sessions.append(session)
    return sessions


def _subscribe(hub: Hub, sessions: list[Session]) -> list[Subscriber]:
    subscribers = []
    for session in sessions:
        subscriber = Subscriber(f"client-{session.id}", limit=100)
        hub.subscribe(session.id, subscriber)
        subscribers.append(subscriber)
    return subscribers


async def _seqs(subscriber: Subscriber) -> list[int | None]:
    with trio.fail_after(5):
        return [event.seq for event in await subscriber.get()]


@pytest.mark.parametrize("lost_by", ["reconnect", "overflow"])
async def test_a_reread_brings_every_feed_up_to_date(
    chatd: RunningChatd,
    nursery: trio.Nursery,
    lost_by: str,
) -> None:
    sessions = await _sessions_with_messages(chatd, [1, 3, 2])
    hub = Hub()  # not fed by the listener: only the re-read can fill it
    subscribers = _subscribe(hub, sessions)
    first = await chatd.services.messages.after_seq(sessions[1].id, 0, limit=1)
    hub.publish_message(first[0])  # the second feed has seen seq 1 already
    assert await _seqs(subscribers[1]) == [1]

    router = EventRouter(hub, chatd.services.messages, reread_feeds=2)  # 3 feeds: 2 queries
    if lost_by == "reconnect":
        router.on_connect()
    else:  # notifications for no local session, one more than the inbox holds
        note = json.dumps({"type": "typing", "sessionId": "elsewhere"})
        for _ in range(INBOX + 1):
            router.on_notify(note)
    await nursery.start(router.run)

    assert [await _seqs(s) for s in subscribers] == [[1], [2, 3], [1, 2]]
    assert router.resyncs == 1
