"""The built-in demo bot's brain: keyword intents, like the guide's n8n Function node.

A small, honest demo: it never offers a button that leads back to the same answer, makes up an
order's status (the same for the same number, and says it is made up), and, asked for a person,
hands the chat to the staff inbox (/inbox; docs/inbox.md). Today's date comes in as an
argument.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field
from datetime import date, timedelta

MADE_UP = "(This is chatd's demo bot: the order and its status are made up.)"
# Who the demo bot's streamed chunks say they come from: an n8n node of its own.
NODE = {"nodeId": "chatd-demo-bot", "nodeName": "chatd demo bot", "itemIndex": 0, "runIndex": 0}
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
# "#1234", "# 1234", "A-12345", or at least four bare digits, as a word of their own.
_ORDER_NUMBER = re.compile(
    r"(?<![\w#-])(?:#\s?(?P<hashed>\d{3,12})|(?P<prefix>[A-Za-z]{1,3})-(?P<lettered>\d{3,12})"
    r"|(?P<bare>\d{4,12}))(?![\w-])"
)


@dataclass(frozen=True)
class DemoAnswer:
    content: str
    intent: str
    quick_replies: list[str] = field(default_factory=list)
    handoff: bool = False  # the reply carries {"type": "handoff"}: the staff inbox takes over


HUMAN = DemoAnswer(
    "I'll ask a colleague to join: someone from the team will answer here. (In this demo, staff"
    " sign in at /inbox with an account from `chatd agent add`; see the README.)",
    "human",
    handoff=True,
)
ASK_ORDER_NUMBER = DemoAnswer(
    "Sure: what's your order number? (Any number works in this demo, e.g. 12345.)", "order"
)

# Asking for a person wins over everything; then an order number; then the first match below
# ("start a return" before "return").
_HUMAN_WORDS = ("human", "agent", "person", "someone", "operator", "staff")
_INTENTS: list[tuple[tuple[str, ...], DemoAnswer]] = [
    (("order", "track", "where is", "package", "parcel"), ASK_ORDER_NUMBER),
    (
        ("start a return", "return label"),
        DemoAnswer(
            "In a real shop the n8n workflow would create your return label here; this demo"
            " can't. Returns are free within 30 days of delivery.",
            "return_start",
        ),
    ),
    (
        ("refund",),
        DemoAnswer(
            "Refunds go back to your original payment method within 5 working days of the"
            " return reaching us.",
            "refund",
            ["Start a return"],
        ),
    ),
    (
        ("return", "exchange", "broken"),
        DemoAnswer(
            "Returns are free within 30 days. Shall I start a return for you?",
            "return",
            ["Start a return", "Refund policy"],
        ),
    ),
    (
        ("shipping", "delivery", "deliver", "ship"),
        DemoAnswer("We ship within 1-2 working days; delivery takes 2-4 days.", "shipping"),
    ),
    (("thank",), DemoAnswer("You're welcome!", "thanks")),
    (
        ("hello", "hi", "hey", "good morning", "good evening"),
        DemoAnswer(
            "Hello! I'm the demo shop assistant. How can I help?",
            "greeting",
            ["Where is my order?", "Return an item", "Shipping times"],
        ),
    ),
]
FALLBACK = DemoAnswer(
    "I'm a demo bot: ask me about an order (any order number, e.g. 12345), a return or shipping.",
    "fallback",
    ["Where is my order?", "Return an item"],
)


def answer(text: str, today: date) -> DemoAnswer:
    words = f" {text.lower()} "

    def mentions(keywords: tuple[str, ...]) -> bool:
        return any(f" {k}" in words for k in keywords)  # a word, or the start of one

    if mentions(_HUMAN_WORDS):
        return HUMAN
    number = order_number(text)
    if number is not None:
        return DemoAnswer(order_status(number, today), "order_status")
    return next((reply for keywords, reply in _INTENTS if mentions(keywords)), FALLBACK)


def order_number(text: str) -> str | None:
    """The first order number in `text`, as shown back: "#12345" or "A-12345"."""
    match = _ORDER_NUMBER.search(text)
    if match is None:
        return None
    if match["lettered"]:
        return f"{match['prefix'].upper()}-{match['lettered']}"
    return f"#{match['hashed'] or match['bare']}"


def order_status(number: str, today: date) -> str:
    """A made-up status, the same for the same number on the same day."""
    seed = zlib.crc32(number.encode())  # stable across processes, unlike hash()
    if seed % 5 == 0:
        return f"Order {number} is being packed and ships tomorrow. {MADE_UP}"
    shipped = today - timedelta(days=1 + seed // 5 % 4)
    arrives = shipped + timedelta(days=2 + seed // 20 % 3)
    verb = "arrived" if arrives <= today else "should arrive"
    return f"Order {number} shipped on {_day(shipped)} and {verb} on {_day(arrives)}. {MADE_UP}"


def _day(day: date) -> str:
    """ "Monday 3 June", in English whatever the process's locale."""
    return f"{_DAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]}"


def words(text: str) -> list[str]:
    """The pieces a reply streams in: each word with the whitespace before it."""
    return re.findall(r"\s*\S+", text)


def stream_chunks(text: str, now_ms: int) -> list[bytes]:
    """`text` as n8n's streaming response mode writes it: newline-delimited JSON, a begin, an
    item per word, an end (chatd/core/n8n_stream.py reads it). `now_ms`: the timestamp."""
    metadata = {**NODE, "timestamp": now_ms}
    chunks = [
        {"type": "begin", "metadata": metadata},
        *({"type": "item", "content": word, "metadata": metadata} for word in words(text)),
        {"type": "end", "metadata": metadata},
    ]
    return [
        json.dumps(c, ensure_ascii=False, separators=(",", ":")).encode() + b"\n" for c in chunks
    ]
