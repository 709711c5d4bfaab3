"""Ending a conversation and rating it, against a real chatd, PostgreSQL and n8n sink: the end
and the rating reach the session's clients as system messages, the rating reaches n8n as a
signed event through the queue, a reply to it is never shown, and bad input changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from chatd.core.signing import standard_signature
from tests.chat import Session, new_session, send, table_counts
from tests.integration.test_api import set_expiry
from tests.integration.test_delivery import SECRET, Pipeline, open_pipeline
from tests.sink import Reply, Status


@pytest.fixture
async def pipe(nursery: trio.Nursery, database_url: str) -> Any:
    pipe = await open_pipeline(nursery, database_url, admin={"token": "t" * 32})
    pipe.sink.behave(Reply("Happy to help."))
    yield pipe
    pipe.chatd.stop.set()


async def close(pipe: Pipeline, session: Session) -> dict[str, Any]:
    async with pipe.chatd.client() as client:
        response = await client.post(f"/api/chat/session/{session.id}/close", headers=session.auth)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def rate(pipe: Pipeline, session: Session, **body: Any) -> Any:
    async with pipe.chatd.client() as client:
        return await client.post(
            "/api/chat/rating", headers=session.auth, json={"sessionId": session.id, **body}
        )


async def view(pipe: Pipeline, session: Session) -> dict[str, Any]:
    async with pipe.chatd.client() as client:
        response = await client.get(f"/api/chat/session/{session.id}", headers=session.auth)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def ended_messages(pipe: Pipeline, session: Session) -> list[dict[str, Any]]:
    return list((await view(pipe, session))["messages"])


async def chatted(pipe: Pipeline) -> Session:
    async with pipe.chatd.client() as client:
        session = await new_session(client)
        assert (await send(client, session, "Where is my order?")).status_code == 200
    await pipe.wait_messages(session, 2)
    return session


async def test_the_shopper_ends_the_chat_then_rates_it_once_and_n8n_hears_of_it(
    pipe: Pipeline,
) -> None:
    session = await chatted(pipe)
    assert (await view(pipe, session))["ratingRequested"] is False  # live: not yet
    ended = await close(pipe, session)
    assert ended == {"sessionId": session.id, "status": "closed", "ratingRequested": True}
    assert await close(pipe, session) == ended  # again: nothing changes
    messages = await ended_messages(pipe, session)
    assert [(m["senderType"], m["content"], m["seq"]) for m in messages[2:]] == [
        ("system", "Chat ended", 3)
    ]
    assert messages[2]["metadata"] == {"event": "session_closed", "by": "shopper"}
    async with pipe.chatd.client() as client:  # an ended chat takes no more messages
        late = await send(client, session, "one more thing")
    assert (late.status_code, late.json()["error"]["code"]) == (410, "session_expired")

    answer = await rate(pipe, session, rating=4, comment="  Quick and helpful  ")
    assert answer.status_code == 200, answer.text
    assert answer.json()["rating"] == 4
    assert answer.json()["comment"] == "Quick and helpful"
    seen = await view(pipe, session)
    assert (seen["status"], seen["ratingRequested"], seen["rated"]) == ("closed", False, True)
    again = await rate(pipe, session, rating=5)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_rated")

    # The event: through the queue, signed like a message, after the message before it.
    (_, event) = await pipe.sink.wait_for(2)
    body = event.json
    assert body["event"] == {"type": "rating", "rating": 4, "comment": "Quick and helpful"}
    assert body["sessionId"] == session.id
    assert body["message"]["content"] == "Rated 4 of 5: Quick and helpful"
    assert body["seq"] == 4
    expected = standard_signature(
        SECRET, event.headers["webhook-id"], int(event.headers["webhook-timestamp"]), event.body
    )
    assert event.headers["webhook-signature"] == expected
    rating_message = (await ended_messages(pipe, session))[3]
    assert rating_message["metadata"] == {
        "event": "rating",
        "rating": 4,
        "comment": "Quick and helpful",
    }
    # The sink answered the event with a reply: completed, and nothing shown.
    job = await pipe.wait_job(rating_message["id"], "completed")
    assert "not shown" in job["last_error"]
    await trio.sleep(0.3)
    assert len(await ended_messages(pipe, session)) == 4


async def test_an_expired_conversation_is_asked_for_a_rating_when_opened(pipe: Pipeline) -> None:
    session = await chatted(pipe)
    await set_expiry(pipe.chatd, session, "-1 second")
    seen = await view(pipe, session)
    assert (seen["status"], seen["ratingRequested"], seen["rated"]) == ("expired", True, False)
    assert [m["seq"] for m in seen["messages"]] == [1, 2]
    ended = await close(pipe, session)  # an expired chat stays as it is
    assert ended == {"sessionId": session.id, "status": "expired", "ratingRequested": True}
    assert (await rate(pipe, session, rating=2)).status_code == 200
    assert (await view(pipe, session))["ratingRequested"] is False


async def test_ask_on_and_enabled_decide_whether_to_ask(
    nursery: trio.Nursery, database_url: str
) -> None:
    pipe = await open_pipeline(nursery, database_url, csat={"ask_on": "staff"})
    pipe.sink.behave(Reply("ok"))
    session = await chatted(pipe)
    assert (await close(pipe, session))["ratingRequested"] is False
    assert (await rate(pipe, session, rating=5)).status_code == 200  # may rate all the same
    pipe.chatd.stop.set()


async def test_ratings_can_be_switched_off(nursery: trio.Nursery, database_url: str) -> None:
    pipe = await open_pipeline(nursery, database_url, csat={"enabled": "false"})
    pipe.sink.behave(Reply("ok"))
    session = await chatted(pipe)
    assert (await close(pipe, session))["ratingRequested"] is False
    before = await table_counts(pipe.chatd.services.pool)
    refused = await rate(pipe, session, rating=5)
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "csat_disabled")
    assert await table_counts(pipe.chatd.services.pool) == before
    pipe.chatd.stop.set()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rating": 0}, "rating"),
        ({"rating": 6}, "rating"),
        ({"rating": "5"}, "rating"),
        ({"rating": 4.5}, "rating"),
        ({"rating": True}, "rating"),
        ({"rating": "great"}, "rating"),
        ({}, "rating"),
        ({"rating": 3, "comment": "x" * 1001}, "comment"),
        ({"rating": 3, "comment": 5}, "comment"),
        ({"rating": 3, "stars": 3}, "stars"),
    ],
)
async def test_bad_ratings_are_refused_and_change_nothing(
    pipe: Pipeline, body: dict[str, Any], field: str
) -> None:
    session = await chatted(pipe)
    await close(pipe, session)
    before = await table_counts(pipe.chatd.services.pool)
    response = await rate(pipe, session, **body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field
    assert await table_counts(pipe.chatd.services.pool) == before
    assert (await view(pipe, session))["rated"] is False


async def test_no_rating_for_someone_elses_conversation_or_a_live_one(pipe: Pipeline) -> None:
    mine, theirs = await chatted(pipe), await chatted(pipe)
    await close(pipe, theirs)
    before = await table_counts(pipe.chatd.services.pool)
    async with pipe.chatd.client() as client:
        wrong = await client.post(
            "/api/chat/rating", headers=mine.auth, json={"sessionId": theirs.id, "rating": 1}
        )
        assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "invalid_session")
        missing = await client.post("/api/chat/rating", json={"sessionId": theirs.id, "rating": 1})
        assert (missing.status_code, missing.json()["error"]["code"]) == (401, "missing_token")
        closing = await client.post(f"/api/chat/session/{theirs.id}/close", headers=mine.auth)
        assert closing.status_code == 401
        unknown = await client.post(
            "/api/chat/session/00000000-0000-4000-8000-000000000000/close", headers=mine.auth
        )
        assert unknown.status_code == 401
        bad_id = await client.post("/api/chat/session/not-an-id/close", headers=mine.auth)
        assert (bad_id.status_code, bad_id.json()["error"]["code"]) == (400, "invalid_id")
    live = await rate(pipe, mine, rating=5)
    assert (live.status_code, live.json()["error"]["code"]) == (409, "conversation_active")
    assert await table_counts(pipe.chatd.services.pool) == before


async def test_a_rating_is_in_the_admin_transcript(pipe: Pipeline) -> None:
    session = await chatted(pipe)
    await close(pipe, session)
    assert (await rate(pipe, session, rating=5, comment="Great\nservice")).status_code == 200
    admin = {"Authorization": f"Bearer {'t' * 32}"}
    async with pipe.chatd.client() as client:
        url = f"/api/admin/sessions/{session.id}/transcript"
        body = (await client.get(url, headers=admin)).json()
        text = (await client.get(f"{url}?format=text", headers=admin)).text
    assert body["rating"]["rating"] == 5
    assert body["rating"]["comment"] == "Great\nservice"
    assert body["messages"][-1]["content"] == "Rated 5 of 5: Great\nservice"
    assert "Rated 5 of 5 at " in text.splitlines()[1]
    assert text.splitlines()[1].endswith(": Great service")


async def test_a_rating_event_that_n8n_refuses_dies_without_a_fallback_reply(
    pipe: Pipeline,
) -> None:
    session = await chatted(pipe)
    await close(pipe, session)
    pipe.sink.behave(Status(400, b'{"message": "no"}'))
    assert (await rate(pipe, session, rating=1)).status_code == 200
    rating_message = (await ended_messages(pipe, session))[3]
    await pipe.wait_job(rating_message["id"], "dead")
    await trio.sleep(0.3)
    messages = await ended_messages(pipe, session)
    assert len(messages) == 4  # no "Sorry, I can't answer right now"
    assert messages[3]["status"] == "failed"


async def staff_close(pipe: Pipeline, session_id: str, token: str = "t" * 32) -> Any:
    async with pipe.chatd.client() as client:
        return await client.post(
            f"/api/admin/sessions/{session_id}/close",
            headers={"Authorization": f"Bearer {token}"},
        )


async def test_staff_close_a_chat_and_the_shopper_is_asked_to_rate_it(pipe: Pipeline) -> None:
    session = await chatted(pipe)
    closed = await staff_close(pipe, session.id)
    assert closed.status_code == 200, closed.text
    assert closed.json() == {"sessionId": session.id, "status": "closed", "ratingRequested": True}
    seen = await view(pipe, session)
    assert (seen["status"], seen["ratingRequested"]) == ("closed", True)
    assert seen["messages"][-1]["metadata"] == {"event": "session_closed", "by": "staff"}
    assert (await staff_close(pipe, session.id)).json() == closed.json()  # again: no change
    assert len((await view(pipe, session))["messages"]) == 3
    assert (await rate(pipe, session, rating=3)).status_code == 200


async def test_staff_close_refuses_bad_input_and_changes_nothing(pipe: Pipeline) -> None:
    session = await chatted(pipe)
    before = await table_counts(pipe.chatd.services.pool)
    unknown = await staff_close(pipe, "00000000-0000-4000-8000-000000000000")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "session_not_found")
    bad_id = await staff_close(pipe, "not-an-id")
    assert (bad_id.status_code, bad_id.json()["error"]["code"]) == (400, "invalid_id")
    wrong = await staff_close(pipe, session.id, token="w" * 32)
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "bad_admin_token")
    assert await table_counts(pipe.chatd.services.pool) == before
    assert (await view(pipe, session))["status"] == "active"


async def test_ask_on_decides_after_a_staff_close(nursery: trio.Nursery, database_url: str) -> None:
    pipe = await open_pipeline(
        nursery, database_url, csat={"ask_on": "shopper"}, admin={"token": "t" * 32}
    )
    pipe.sink.behave(Reply("ok"))
    session = await chatted(pipe)
    assert (await staff_close(pipe, session.id)).json()["ratingRequested"] is False
    assert (await view(pipe, session))["ratingRequested"] is False
    pipe.chatd.stop.set()
