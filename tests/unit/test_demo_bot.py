import re
from datetime import date, timedelta

import pytest

from chatd.core.demo_bot import (
    MADE_UP,
    DemoAnswer,
    answer,
    order_number,
    order_status,
    stream_chunks,
    words,
)
from chatd.core.n8n_stream import Piece, StreamParser, starts_stream

TODAY = date(2025, 6, 4)  # a Wednesday


def reply(text: str) -> DemoAnswer:
    return answer(text, TODAY)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Where is my order?", "order"),
        ("Track my order", "order"),
        ("I want to track a package", "order"),
        ("Where is my order #123?", "order_status"),
        ("12345", "order_status"),
        ("it's A-12345", "order_status"),
        ("How do I return these shoes?", "return"),
        ("Start a return", "return_start"),
        ("Refund policy", "refund"),
        ("how long does shipping take", "shipping"),
        ("Hello!", "greeting"),
        ("hi there", "greeting"),
        ("thanks!", "thanks"),
        ("can I talk to a human", "human"),
        ("a real person about order 12345 please", "human"),
        ("what's the weather", "fallback"),
        ("", "fallback"),
    ],
)
def test_intents(text: str, intent: str) -> None:
    assert reply(text).intent == intent


def test_words_match_whole_prefixes_only() -> None:
    assert reply("this is a shipshape question").intent == "shipping"  # "ship" prefix: accepted
    assert reply("chips and salsa").intent == "fallback"  # "hi" inside a word does not greet


def test_every_answer_has_content() -> None:
    for text in ("order", "return", "shipping", "hello", "human", "refund", "12345", "???"):
        got = reply(text)
        assert got.content.strip()
        assert all(q.strip() for q in got.quick_replies)


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("#12345", "#12345"),
        ("order # 1234", "#1234"),
        ("Where is #123?", "#123"),
        ("my order is a-12345.", "A-12345"),
        ("AB-998877", "AB-998877"),
        ("order 20250604, please", "#20250604"),
        ("I ordered 2 shirts", None),  # a quantity, not an order number
        ("order 123", None),  # three bare digits: too likely a quantity
        ("call 12345678901234", None),  # too long
        ("x12345", None),
        ("12345abc", None),
        ("#12", None),
    ],
)
def test_order_numbers(text: str, number: str | None) -> None:
    assert order_number(text) == number


def test_an_order_status_is_made_up_consistently_and_says_so() -> None:
    first = reply("Where is order #12345?")
    assert first.content.startswith("Order #12345 ")
    assert first.content.endswith(MADE_UP)
    assert reply("#12345").content == first.content  # however it is asked
    assert answer("#12345", TODAY + timedelta(days=1)).content != first.content  # dates move on
    assert first.quick_replies == []


def test_order_statuses_vary_and_their_dates_make_sense() -> None:
    def day(offset: int) -> str:
        d = TODAY + timedelta(days=offset)
        return f"{d:%A} {d.day} {d:%B}"

    past, future = {day(-n) for n in range(1, 5)}, {day(n) for n in range(1, 6)}
    kinds = set()
    for n in range(10_000, 10_100):
        text = order_status(f"#{n}", TODAY)
        if text.startswith(f"Order #{n} is being packed and ships tomorrow."):
            kinds.add("packed")
            continue
        found = re.fullmatch(
            rf"Order #{n} shipped on (.+) and (should arrive|arrived) on (.+)\. .+", text
        )
        assert found is not None, text
        shipped, verb, arrives = found.groups()
        kinds.add(verb)
        assert shipped in past
        assert arrives in (future if verb == "should arrive" else past | {day(0)})
    assert kinds == {"packed", "should arrive", "arrived"}


def test_no_quick_reply_leads_back_to_the_same_answer() -> None:
    """Tapping a suggested reply always moves the conversation on (no loops)."""
    seen: set[str] = set()
    todo = ["hello", "???", "human"]
    while todo:
        text = todo.pop()
        got = reply(text)
        if got.content in seen:
            continue
        seen.add(got.content)
        for label in got.quick_replies:
            assert reply(label).content != got.content, (text, label)
            todo.append(label)
    assert len(seen) >= 6


def test_asking_for_the_order_number_offers_no_button_to_ask_again() -> None:
    asked = reply("Track my order")
    assert "order number" in asked.content
    assert asked.quick_replies == []


def test_no_answer_offers_a_person_and_asking_for_one_is_answered_honestly() -> None:
    everything = ["hello", "???", "order", "12345", "return", "refund", "Start a return", "ship"]
    for text in everything:
        assert all(reply(label).intent != "human" for label in reply(text).quick_replies)
    human = reply("Talk to a human")
    assert human.handoff  # the promise is kept: the staff inbox gets the chat
    assert "colleague" in human.content
    assert "/inbox" in human.content
    assert not reply("hello").handoff


def test_a_streamed_answer_is_n8ns_stream_of_its_words() -> None:
    text = "Sure: what's your order number?  (Any number.)"
    chunks = stream_chunks(text, 1765000000000)
    parser = StreamParser(max_reply_length=4000)
    events = [event for chunk in chunks for event in parser.feed(chunk)] + parser.close()
    assert [run.text for run in parser.result()] == [text]
    assert [e.text for e in events if isinstance(e, Piece)] == words(text)
    assert words(text) == ["Sure:", " what's", " your", " order", " number?", "  (Any", " number.)"]
    assert all(chunk.endswith(b"\n") and chunk.count(b"\n") == 1 for chunk in chunks)
    assert starts_stream(chunks[0].rstrip(b"\n"))
