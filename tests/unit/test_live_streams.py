"""The replies streaming now, per process (chatd/realtime/streams.py), and how their pieces are
packed into notifications for the other processes (chatd/realtime/relay.py encode)."""

from __future__ import annotations

import json

from chatd.realtime.relay import MAX_PAYLOAD_BYTES, encode
from chatd.realtime.router import parse_notification
from chatd.realtime.streams import LiveStreams

S, R = "session-1", "user-message-1"


def add(streams: LiveStreams, message: str, index: int, *texts: str, attempt: str = "a1",
        local: bool = False, now: float = 0.0) -> list[tuple[str, ...]]:  # fmt: skip
    events = streams.pieces(S, message, R, attempt, index, list(texts), local=local, now=now)
    return [
        (e["type"], e["messageId"], e.get("reason") or f"{e['index']}:{e['text']}") for e in events
    ]


def test_pieces_extend_the_text_once_each_in_order() -> None:
    streams = LiveStreams(ttl=60)
    assert add(streams, "m1", 0, "Hel", "lo") == [
        ("message_delta", "m1", "0:Hel"),
        ("message_delta", "m1", "1:lo"),
    ]
    assert add(streams, "m1", 1, "lo", " there") == [("message_delta", "m1", "2: there")]
    (view,) = [s.view() for s in streams.of_session(S)]
    assert view == {"messageId": "m1", "replyTo": R, "index": 2, "text": "Hello there"}


def test_a_stream_that_skips_pieces_gives_no_snapshot_and_no_more_pieces() -> None:
    streams = LiveStreams(ttl=60)
    add(streams, "m1", 0, "a")
    assert add(streams, "m1", 2, "c") == []  # piece 1 was missed (a lost notification)
    assert add(streams, "m1", 3, "d") == []
    assert streams.of_session(S) == []
    assert add(streams, "m2", 5, "late") == []  # first heard of mid-way
    assert streams.of_session(S) == []
    assert streams.version(S) == 0


def test_a_new_attempts_first_piece_replaces_an_earlier_attempts_streams_for_good() -> None:
    streams = LiveStreams(ttl=60)
    add(streams, "old-1", 0, "Your", attempt="a1")
    add(streams, "old-2", 0, "Also", attempt="a1")
    assert add(streams, "new", 0, "Hi", attempt="a2") == [
        ("message_stream_end", "old-1", "superseded"),
        ("message_stream_end", "old-2", "superseded"),
        ("message_delta", "new", "0:Hi"),
    ]
    # The old attempt's reader has not noticed yet: its later pieces bring nothing back.
    assert add(streams, "old-1", 1, " order", attempt="a1") == []
    assert [s.message_id for s in streams.of_session(S)] == ["new"]


def test_streams_of_a_session_in_the_order_they_began_until_stored_or_withdrawn() -> None:
    streams = LiveStreams(ttl=60)
    add(streams, "m1", 0, "a")
    add(streams, "m2", 0, "b")
    assert [s.message_id for s in streams.of_session(S)] == ["m1", "m2"]
    assert streams.drop("m1")
    assert not streams.drop("m1")
    streams.withdraw("m2", now=0)
    assert add(streams, "m2", 1, "c") == []
    assert streams.of_session(S) == []
    assert len(streams) == 0


def test_the_version_follows_the_pieces_and_is_the_same_in_every_process() -> None:
    here, there = LiveStreams(ttl=60), LiveStreams(ttl=60)
    assert here.version(S) == 0
    add(here, "m1", 0, "a", local=True)
    first = here.version(S)
    add(there, "m1", 0, "a")
    assert there.version(S) == first != 0
    add(here, "m1", 1, "b", local=True)
    assert here.version(S) not in (0, first)
    assert 0 < here.version(S) < 2**53


def test_abandoned_streams_expire_and_foreign_ones_stop_giving_snapshots_after_a_gap() -> None:
    streams = LiveStreams(ttl=10)
    add(streams, "mine", 0, "a", local=True, now=0)
    add(streams, "theirs", 0, "b", now=5)
    streams.heard_gap()  # LISTEN reconnected: notifications may have been lost
    assert [s.message_id for s in streams.of_session(S)] == ["mine"]
    assert [s.message_id for s in streams.expire(now=10)] == ["mine"]
    assert [s.message_id for s in streams.expire(now=15)] == ["theirs"]
    assert len(streams) == 0


def test_pieces_are_packed_into_notifications_under_postgresqls_limit_in_order() -> None:
    items = [
        {"sessionId": S, "messageId": f"m{n}", "replyTo": R, "attempt": "a1", "index": 0,
         "pieces": [f"piece {i} of m{n} — ünïcode " * 3 for i in range(60)]}
        for n in range(5)
    ] + [{"sessionId": S, "messageId": "m0", "end": "failed"}]  # fmt: skip
    payloads = encode("process-1", items)
    assert len(payloads) > 1
    assert all(len(p.encode()) < MAX_PAYLOAD_BYTES for p in payloads)
    notes = [parse_notification(p) for p in payloads]
    assert all(n is not None and n["origin"] == "process-1" for n in notes)
    unpacked = [item for n in notes if n is not None for item in n["items"]]
    pieces = {}
    for item in unpacked[:-1]:
        got = pieces.setdefault(item["messageId"], [])
        assert item["index"] == len(got)  # split items keep consecutive indexes
        got.extend(item["pieces"])
    assert pieces == {item["messageId"]: item["pieces"] for item in items[:-1]}
    assert unpacked[-1] == items[-1]
    assert all(p.startswith('{"type":"stream","origin":"process-1","items":[') for p in payloads)
    assert json.loads(payloads[0])["type"] == "stream"
