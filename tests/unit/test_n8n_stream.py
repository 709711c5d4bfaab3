"""n8n's streamed reply parser (chatd/core/n8n_stream.py): runs, pieces, and every way a stream
fails; any split of a stream into network chunks gives the same result."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatd.core.n8n_stream import (
    MAX_PIECE_CHARS,
    Began,
    Event,
    Piece,
    StreamFailed,
    StreamParser,
    is_ndjson,
    starts_stream,
)

AGENT, OTHER = "agent-node-id", "other-node-id"


def chunk(
    kind: str, node: str = AGENT, content: str | None = None, run: int = 0, item: int = 0
) -> bytes:
    data: dict[str, Any] = {"type": kind}
    if content is not None:
        data["content"] = content
    data["metadata"] = {
        "nodeId": node,
        "nodeName": f"name of {node}",
        "itemIndex": item,
        "runIndex": run,
        "timestamp": 1765000000000,
    }
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def reply(*tokens: str, node: str = AGENT, run: int = 0) -> bytes:
    return b"".join(
        [chunk("begin", node, run=run), *(chunk("item", node, t, run=run) for t in tokens),
         chunk("end", node, run=run)]
    )  # fmt: skip


def parse(*parts: bytes, max_reply_length: int = 4000) -> tuple[list[Event], list[str]]:
    parser = StreamParser(max_reply_length=max_reply_length)
    events: list[Event] = []
    for part in parts:
        events.extend(parser.feed(part))
    events.extend(parser.close())
    return events, [run.text for run in parser.result()]


def failure(*parts: bytes, **kwargs: Any) -> str:
    with pytest.raises(StreamFailed) as caught:
        parse(*parts, **kwargs)
    return caught.value.reason


def test_one_run_gives_one_reply_and_a_piece_per_token() -> None:
    events, texts = parse(reply("Hel", "lo ", "there"))
    assert texts == ["Hello there"]
    assert events == [Began(0), Piece(0, 0, "Hel"), Piece(0, 1, "lo "), Piece(0, 2, "there")]


def test_runs_are_keyed_by_node_run_and_item_and_kept_in_the_order_they_began() -> None:
    interleaved = (
        chunk("begin", AGENT)
        + chunk("begin", OTHER)
        + chunk("item", OTHER, "B1")
        + chunk("item", AGENT, "A1")
        + chunk("item", OTHER, "B2")
        + chunk("end", OTHER)
        + chunk("item", AGENT, "A2")
        + chunk("end", AGENT)
        + reply("again", run=1)  # the agent's next model call (after a tool): another run
    )
    events, texts = parse(interleaved)
    assert texts == ["A1A2", "B1B2", "again"]
    assert [e for e in events if isinstance(e, Piece)] == [
        Piece(1, 0, "B1"),
        Piece(0, 0, "A1"),
        Piece(1, 1, "B2"),
        Piece(0, 1, "A2"),
        Piece(2, 0, "again"),
    ]


def test_keepalives_unknown_types_blank_lines_and_empty_items_are_ignored() -> None:
    stream = (
        b'{"type":"keepalive"}\n\n'
        + chunk("begin")
        + chunk("item", content="")
        + b'{"type":"progress","metadata":{}}\n'
        + chunk("item", content="ok")
        + b"   \n"
        + chunk("end")
    )
    events, texts = parse(stream)
    assert texts == ["ok"]
    assert [e for e in events if isinstance(e, Piece)] == [Piece(0, 0, "ok")]


def test_a_last_line_without_its_newline_still_counts() -> None:
    _events, texts = parse(reply("a", "b").rstrip(b"\n"))
    assert texts == ["ab"]


def test_a_long_item_is_passed_on_in_pieces_of_bounded_size() -> None:
    text = "x" * (MAX_PIECE_CHARS * 2 + 5)
    events, texts = parse(reply(text))
    pieces = [e for e in events if isinstance(e, Piece)]
    assert [len(p.text) for p in pieces] == [MAX_PIECE_CHARS, MAX_PIECE_CHARS, 5]
    assert [p.index for p in pieces] == [0, 1, 2]
    assert texts == [text]


def test_whitespace_only_runs_are_kept_for_the_caller_to_drop() -> None:
    _events, texts = parse(reply("\n", run=0) + reply("answer", run=1))
    assert texts == ["\n", "answer"]


@pytest.mark.parametrize(
    ("stream", "reason"),
    [
        (b"", "without any reply text"),
        (b'{"type":"keepalive"}\n', "without any reply text"),
        (reply(" ", "\n"), "without any reply text"),
        (chunk("begin") + chunk("item", content="cut sh"), "began and never ended"),
        (chunk("item", content="no begin, no end"), "began and never ended"),
        (b"not json\n", "line 1 of the stream: malformed JSON"),
        (chunk("begin") + b"[1, 2]\n", "line 2 of the stream is not a chunk with a type"),
        (b'{"type": 3}\n', "not a chunk with a type"),
        (chunk("begin") + b'{"type":"item","content":{"a":1}}\n', "item content is not a string"),
        (chunk("begin") + b'{"type":"item","content":"a\\u0000b"}\n', "NUL"),
        (chunk("begin") + b'{"type":"item","content":"\\ud800"}\n', "lone UTF-16 surrogate"),
        (chunk("begin") + b'{"type":"item","content":"\xff\xfe"}\n', "line 2 of the stream is not valid UTF-8"),
        (b'{"type":"error","metadata":{"nodeName":"Check signature"}}\n', "'Check signature' failed: no description"),
        (b'{"type":"error","metadata":{"nodeName":"a\\u0000"}}\n', "NUL"),
        (b'{"type":"begin","x":NaN}\n', "NaN is not valid JSON"),
        (b'{"type":"begin","x":1e999}\n', "out of range"),
    ],
    ids=[
        "empty", "keepalive-only", "whitespace-only", "begin-without-end", "item-without-end",
        "not-json", "not-an-object", "type-not-a-string", "content-not-a-string", "nul",
        "lone-surrogate", "invalid-utf8", "error-only", "nul-in-node-name", "nan", "infinite",
    ],
)  # fmt: skip
def test_streams_that_make_no_whole_reply_fail_with_a_reason(stream: bytes, reason: str) -> None:
    assert reason in failure(stream)


def test_an_error_while_a_reply_is_being_written_fails_at_once() -> None:
    parser = StreamParser(max_reply_length=4000)
    parser.feed(chunk("begin") + chunk("item", content="Your order"))
    with pytest.raises(StreamFailed, match="'name of agent-node-id' failed: Rate limit"):
        parser.feed(chunk("error", AGENT, "Rate limit reached"))
    with pytest.raises(StreamFailed):  # and stays failed
        parser.feed(reply("more"))


def test_an_error_after_the_reply_fails_unless_n8n_went_on() -> None:
    # A node after the agent failed and the execution stopped: nothing says the reply is final.
    assert "'name of other-node-id' failed: CRM down" in failure(
        reply("Done.") + chunk("error", OTHER, "CRM down")
    )
    # A tool failed, n8n went on (an AI tool continues by default): the agent's next run answers.
    _events, texts = parse(
        reply("", run=0) + chunk("error", OTHER, "404 order not found") + reply("Not found.", run=1)
    )
    assert texts == ["", "Not found."]


def test_a_reply_longer_than_the_limit_fails_as_soon_as_it_is() -> None:
    parser = StreamParser(max_reply_length=10)
    parser.feed(chunk("begin") + chunk("item", content="0123456789"))
    with pytest.raises(StreamFailed, match="longer than 10 characters"):
        parser.feed(chunk("item", content="!"))


def test_a_line_longer_than_the_cap_fails_before_it_is_all_buffered() -> None:
    parser = StreamParser(max_reply_length=10**9, max_line_bytes=1000)
    parser.feed(b'{"type":"item","content":"' + b"x" * 900)
    with pytest.raises(StreamFailed, match="longer than 1000 bytes"):
        parser.feed(b"x" * 200)
    one_megabyte = b'{"type":"item","content":"' + b"x" * (1 << 20) + b'"}\n'
    assert "longer than 65536 bytes" in failure(chunk("begin") + one_megabyte)


def test_a_character_cut_between_network_chunks_is_whole_in_its_line() -> None:
    stream = reply("Grüße 👋")
    cut = stream.index("👋".encode()) + 2  # inside the four bytes of the emoji
    _events, texts = parse(stream[:cut], stream[cut:])
    assert texts == ["Grüße 👋"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'{"type":"begin","metadata":{"nodeId":"x"}}', True),
        (b'{"type":"keepalive"}', True),
        (b'{"type":"error","metadata":{}}', True),
        (b'{"output":"Hello"}', False),
        (b'{"sessionId":"s","response":{"content":"hi","type":"text"}}', False),
        (b'{"type":"quick_reply","content":"hi"}', False),
        (b"{", False),
        (b"<!DOCTYPE html>", False),
        (b"", False),
    ],
)
def test_a_stream_is_told_by_its_first_line(line: bytes, expected: bool) -> None:
    assert starts_stream(line) is expected


def test_ndjson_content_types_say_stream_and_n8ns_json_does_not() -> None:
    assert is_ndjson("application/x-ndjson")
    assert is_ndjson("Application/X-NDJSON; charset=utf-8")
    assert not is_ndjson("application/json; charset=utf-8")
    assert not is_ndjson("")


STORABLE = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
TOKENS = st.lists(st.text(STORABLE, min_size=1, max_size=8), min_size=1, max_size=12).filter(
    lambda tokens: "".join(tokens).strip()
)


@settings(max_examples=200, deadline=None)
@given(
    first=TOKENS,
    second=TOKENS,
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=20),
)
def test_any_split_of_a_stream_into_network_chunks_gives_the_same_result(
    first: list[str], second: list[str], cuts: list[int]
) -> None:
    stream = b'{"type":"keepalive"}\n' + reply(*first) + reply(*second, node=OTHER)
    whole_events, whole_texts = parse(stream)
    points = sorted({min(c, len(stream)) for c in cuts})
    parts = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    assert parse(*parts) == (whole_events, whole_texts)
    assert whole_texts == ["".join(first), "".join(second)]
