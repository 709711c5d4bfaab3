"""Export on a real database: sessions active in a range, or named, page by page, oldest first,
in the transcript shape; filtered by tag, rating, shopper and full-text query."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from chatd.core.rating_filter import RatingFilter
from chatd.core.transcript import transcript_json, transcript_text
from chatd.db.export import ExportRange, Transcript, transcript_pages
from chatd.db.pool import Pool

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


async def seed(
    pool: Pool, sid: str, created: datetime, updated: datetime | None = None, messages: int = 0
) -> None:
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO chat_sessions (id, token_hash, guest_email, metadata, created_at,"
            " updated_at, expires_at, last_seq)"
            " VALUES (%s, '\\x00', 'ann@example.com', '{\"page\": \"/cart\"}', %s, %s, %s, %s)",
            (sid, created, updated or created, (updated or created) + timedelta(hours=1), messages),
        )
        for seq in range(1, messages + 1):
            await conn.execute(
                "INSERT INTO chat_messages (id, session_id, sender_type, content, seq, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    f"{sid}-m{seq}",
                    sid,
                    "user" if seq % 2 else "bot",
                    f"text {seq}",
                    seq,
                    created + timedelta(seconds=seq),
                ),
            )


async def export(pool: Pool, spec: ExportRange, page_size: int = 200) -> list[list[Transcript]]:
    return [page async for page in transcript_pages(pool, spec, page_size=page_size)]


def session_ids(pages: list[list[Transcript]]) -> list[str]:
    return [t.session.id for page in pages for t in page]


async def test_export_by_range_takes_sessions_whose_lifetime_overlaps_it(pool: Pool) -> None:
    await seed(pool, "before", T0 - timedelta(days=3), T0 - timedelta(days=2))
    await seed(pool, "spanning", T0 - timedelta(days=1), T0 + timedelta(days=3))
    await seed(pool, "created-inside", T0 + timedelta(hours=1))
    await seed(pool, "updated-inside", T0 - timedelta(days=1), T0 + timedelta(hours=2))
    await seed(pool, "after", T0 + timedelta(days=2))
    pages = await export(pool, ExportRange(T0, T0 + timedelta(days=1)))
    # Oldest first by creation.
    assert session_ids(pages) == ["spanning", "updated-inside", "created-inside"]
    everything = await export(pool, ExportRange())
    assert session_ids(everything) == [
        "before",
        "spanning",
        "updated-inside",
        "created-inside",
        "after",
    ]


async def test_export_by_session(pool: Pool) -> None:
    for n in range(3):
        await seed(pool, f"s{n}", T0 + timedelta(minutes=n), messages=n)
    pages = await export(pool, ExportRange(session_ids=["s2", "s0", "missing"]))
    assert session_ids(pages) == ["s0", "s2"]
    assert await export(pool, ExportRange(T0 + timedelta(days=1), session_ids=["s1"])) == []


async def test_keyset_pages_cover_equal_timestamps_once_each(pool: Pool) -> None:
    for n in (4, 1, 3, 0, 2):  # equal created_at: ties are broken by id
        await seed(pool, f"same-{n}", T0, messages=1)
    await seed(pool, "later", T0 + timedelta(seconds=1))
    pages = await export(pool, ExportRange(), page_size=2)
    assert [len(page) for page in pages] == [2, 2, 2]
    assert session_ids(pages) == [*(f"same-{n}" for n in range(5)), "later"]
    assert [len(t.messages) for page in pages for t in page] == [1, 1, 1, 1, 1, 0]
    exact = await export(pool, ExportRange(), page_size=3)  # a full last page, then an empty one
    assert [len(page) for page in exact] == [3, 3]


async def test_exported_rows_make_the_transcript_shape(pool: Pool) -> None:
    await seed(pool, "one", T0, T0 + timedelta(minutes=5), messages=3)
    [[transcript]] = await export(pool, ExportRange(T0, T0 + timedelta(hours=1)))
    assert "token_hash" not in dataclasses.asdict(transcript.session)
    assert transcript_json(transcript.session, transcript.messages, audit=transcript.audit) == {
        "session": {
            "id": "one",
            "userId": None,
            "guestEmail": "ann@example.com",
            "status": "active",
            "metadata": {"page": "/cart"},
            "createdAt": "2026-11-01T10:00:00Z",
            "updatedAt": "2026-11-01T10:05:00Z",
            "expiresAt": "2026-11-01T11:05:00Z",
            "lastSeq": 3,
            "tags": [],
        },
        "messages": [
            {
                "id": f"one-m{seq}",
                "sessionId": "one",
                "senderType": "user" if seq % 2 else "bot",
                "content": f"text {seq}",
                "messageType": "text",
                "metadata": None,
                "status": "delivered",
                "seq": seq,
                "createdAt": f"2026-11-01T10:00:0{seq}Z",
            }
            for seq in (1, 2, 3)
        ],
        "rating": None,
        "audit": [],
    }


async def test_export_carries_each_sessions_audit_trail(pool: Pool) -> None:
    """Who took, replied, closed, and when: in the JSON and, as lines of their own, the text."""
    await seed(pool, "one", T0, T0 + timedelta(minutes=5), messages=2)
    await seed(pool, "two", T0 + timedelta(minutes=1), T0 + timedelta(minutes=5), messages=1)
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO chat_agents (id, name, email, role, password_hash)"
            " VALUES ('a1', 'Anna', 'anna@shop.example', 'agent', 'x')"
        )
        for action, agent, seconds in [("taken", "a1", 1.5), ("closed", "a1", 9)]:
            await conn.execute(
                "INSERT INTO chat_audit (session_id, agent_id, action, created_at)"
                " VALUES ('one', %s, %s, %s)",
                (agent, action, T0 + timedelta(seconds=seconds)),
            )
    [[one, two]] = await export(pool, ExportRange(T0, T0 + timedelta(hours=1)))
    assert [(a.action, a.agent_name) for a in one.audit] == [("taken", "Anna"), ("closed", "Anna")]
    assert two.audit == []
    body = transcript_json(one.session, one.messages, audit=one.audit)
    assert [(a["action"], a["agentName"], a["at"]) for a in body["audit"]] == [
        ("taken", "Anna", "2026-11-01T10:00:01.500000Z"),
        ("closed", "Anna", "2026-11-01T10:00:09Z"),
    ]
    lines = transcript_text(one.session, one.messages, audit=one.audit).splitlines()
    assert lines[1:] == [
        "2026-11-01T10:00:01Z Shopper: text 1",
        "2026-11-01T10:00:01.500000Z [audit] Anna took the conversation over",
        "2026-11-01T10:00:02Z Bot: text 2",
        "2026-11-01T10:00:09Z [audit] Anna closed the conversation",
    ]


async def tag(pool: Pool, sid: str, *tags: str) -> None:
    async with pool.connection() as conn:
        for name in tags:
            await conn.execute(
                "INSERT INTO chat_tags (session_id, tag, source) VALUES (%s, %s, 'staff')",
                (sid, name),
            )


async def say(pool: Pool, sid: str, seq: int, content: str) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO chat_messages (id, session_id, sender_type, content, seq)"
            " VALUES (%s, %s, 'user', %s, %s)",
            (f"{sid}-said-{seq}", sid, content, seq),
        )


async def test_export_by_tag_keeps_the_pages_and_shows_the_tags(pool: Pool) -> None:
    for n in range(7):
        await seed(pool, f"s{n}", T0 + timedelta(minutes=n), messages=1)
        if n % 2 == 0:
            await tag(pool, f"s{n}", "refund", f"n{n}")
    pages = await export(pool, ExportRange(tag="refund"), page_size=2)
    assert [len(page) for page in pages] == [2, 2]
    assert session_ids(pages) == ["s0", "s2", "s4", "s6"]
    assert [t.session.tags for page in pages for t in page] == [
        ("n0", "refund"),
        ("n2", "refund"),
        ("n4", "refund"),
        ("n6", "refund"),
    ]
    assert await export(pool, ExportRange(tag="nobody")) == []
    both = await export(pool, ExportRange(T0 + timedelta(minutes=3), tag="refund"))
    assert session_ids(both) == ["s4", "s6"]


async def test_export_by_query_takes_sessions_with_a_matching_message(pool: Pool) -> None:
    for n in range(4):
        await seed(pool, f"s{n}", T0 + timedelta(minutes=n))
    await say(pool, "s1", 1, "Are the trail shoes waterproof?")
    await say(pool, "s2", 1, "I want a refund for the trail shoes")
    await say(pool, "s3", 1, "Where is my parcel?")
    pages = await export(pool, ExportRange(query="trail shoes"))
    assert session_ids(pages) == ["s1", "s2"]
    assert session_ids(await export(pool, ExportRange(query="refund -parcel"))) == ["s2"]
    assert session_ids(await export(pool, ExportRange(query='"shoes trail"'))) == []
    german = await export(pool, ExportRange(query="Schuh", language="german"))
    assert session_ids(german) == []  # indexed with "simple": no stems
    assert session_ids(await export(pool, ExportRange(query="parcel", tag="refund"))) == []


async def test_export_by_rating_takes_rated_unrated_or_one_value(pool: Pool) -> None:
    for n in range(5):
        await seed(pool, f"s{n}", T0 + timedelta(minutes=n), messages=1)
    async with pool.connection() as conn:
        for sid, rating in (("s0", 1), ("s2", 4), ("s3", 1)):  # s1 and s4 are not rated
            await conn.execute(
                "INSERT INTO chat_ratings (session_id, rating) VALUES (%s, %s)", (sid, rating)
            )

    async def ids(rating: RatingFilter) -> list[str]:
        return session_ids(await export(pool, ExportRange(rating=rating), page_size=2))

    assert await ids(RatingFilter(rated=True, rating=1)) == ["s0", "s3"]
    assert await ids(RatingFilter(rated=True, rating=4)) == ["s2"]
    assert await ids(RatingFilter(rated=True, rating=5)) == []
    assert await ids(RatingFilter(rated=True)) == ["s0", "s2", "s3"]
    assert await ids(RatingFilter(rated=False)) == ["s1", "s4"]
    assert session_ids(await export(pool, ExportRange())) == ["s0", "s1", "s2", "s3", "s4"]


async def test_export_by_shopper_takes_their_sessions_only(pool: Pool) -> None:
    await seed(pool, "ann-1", T0, messages=2)  # guest_email ann@example.com
    await seed(pool, "ann-2", T0 + timedelta(minutes=1), messages=1)
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO chat_sessions (id, token_hash, user_id, guest_email, expires_at)"
            " VALUES ('bob', '\\x00', 'u-bob', 'BOB@example.com', now() + interval '1 hour')"
        )
    by_email = await export(pool, ExportRange(email="ann@example.com"))
    assert session_ids(by_email) == ["ann-1", "ann-2"]
    assert session_ids(await export(pool, ExportRange(email="bob@EXAMPLE.com"))) == ["bob"]
    assert session_ids(await export(pool, ExportRange(user_id="u-bob"))) == ["bob"]
    assert await export(pool, ExportRange(user_id="U-BOB")) == []  # user ids are exact
