import pytest

from chatd.core.demo_bot import answer


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Where is my order #123?", "order"),
        ("I want to track a package", "order"),
        ("How do I return these shoes?", "return"),
        ("refund please", "return"),
        ("how long does shipping take", "shipping"),
        ("Hello!", "greeting"),
        ("hi there", "greeting"),
        ("can I talk to a human", "human"),
        ("what's the weather", "fallback"),
        ("", "fallback"),
    ],
)
def test_intents(text: str, intent: str) -> None:
    assert answer(text).intent == intent


def test_words_match_whole_prefixes_only() -> None:
    assert answer("this is a shipshape question").intent == "shipping"  # "ship" prefix: accepted
    assert answer("chips and salsa").intent == "fallback"  # "hi" inside a word does not greet


def test_every_answer_has_content() -> None:
    for text in ("order", "return", "shipping", "hello", "human", "???"):
        reply = answer(text)
        assert reply.content.strip()
        assert all(q.strip() for q in reply.quick_replies)
