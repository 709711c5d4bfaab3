"""The built-in demo bot's brain: keyword intents, like the guide's n8n Function node."""

from __future__ import annotations

from dataclasses import dataclass, field

ORDER = "I can help with your order. What's your order number?"


@dataclass(frozen=True)
class DemoAnswer:
    content: str
    intent: str
    quick_replies: list[str] = field(default_factory=list)


_INTENTS: list[tuple[str, tuple[str, ...], DemoAnswer]] = [
    (
        "human",
        ("human", "agent", "person", "someone"),
        DemoAnswer(
            "I'll ask a colleague to join. Meanwhile, can I help with anything else?", "human"
        ),
    ),
    (
        "order",
        ("order", "track", "where is", "package", "parcel"),
        DemoAnswer(ORDER, "order", ["Track my order", "Talk to a human"]),
    ),
    (
        "return",
        ("return", "refund", "exchange", "broken"),
        DemoAnswer(
            "Returns are free within 30 days. Shall I start a return for you?",
            "return",
            ["Start a return", "Refund policy"],
        ),
    ),
    (
        "shipping",
        ("shipping", "delivery", "deliver", "ship"),
        DemoAnswer("We ship within 1-2 working days; delivery takes 2-4 days.", "shipping"),
    ),
    (
        "greeting",
        ("hello", "hi", "hey", "good morning", "good evening"),
        DemoAnswer(
            "Hello! I'm the demo shop assistant. How can I help?",
            "greeting",
            ["Where is my order?", "Return an item", "Shipping times"],
        ),
    ),
]


def answer(text: str) -> DemoAnswer:
    words = f" {text.lower()} "
    for _name, keywords, reply in _INTENTS:
        if any(f" {k}" in words for k in keywords):
            return reply
    return DemoAnswer(
        "I'm a demo bot: ask me about an order, a return or shipping.",
        "fallback",
        ["Where is my order?", "Return an item"],
    )
