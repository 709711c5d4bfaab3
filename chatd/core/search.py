"""What a search result shows: the matched message as text segments, matches marked.

PostgreSQL's ts_headline marks the matched words with delimiters of our choosing; two
private-use characters that the query removes from the content first, so a message cannot fake
a mark. The result is split into segments here (never HTML: the page builds <mark> elements
from them), and cut to a snippet around the first match for the result list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

START = "\ue000"  # ts_headline's StartSel
STOP = "\ue001"  # ts_headline's StopSel
SNIPPET_WORDS = 30  # about this many words of context around the first match
_WORDS = re.compile(r"\S+\s*")


@dataclass(frozen=True)
class Segment:
    text: str
    match: bool


def segments(headline: str) -> list[Segment]:
    """ts_headline's output (HighlightAll) as plain and matched runs, in order."""
    found: list[Segment] = []
    for i, part in enumerate(re.split(f"[{START}{STOP}]", headline)):
        # Delimiters alternate start, stop: odd pieces are between a start and its stop.
        if part:
            found.append(Segment(part, i % 2 == 1))
    return _merged(found)


def terms(parts: list[Segment]) -> list[str]:
    """The distinct matched words, as they appear (first spelling wins, case ignored)."""
    seen: dict[str, str] = {}
    for part in parts:
        if part.match:
            seen.setdefault(part.text.casefold(), part.text)
    return list(seen.values())


def snippet(parts: list[Segment], words: int = SNIPPET_WORDS) -> list[Segment]:
    """About `words` words around the first match, "…" where text was left out."""
    tokens: list[tuple[str, bool]] = []  # (word with its trailing space, matched)
    for part in parts:
        pieces = _WORDS.findall(part.text) or [part.text]
        tokens += [(piece, part.match) for piece in pieces]
    if len(tokens) <= words:
        return parts
    first = next((i for i, (_, matched) in enumerate(tokens) if matched), 0)
    start = max(0, min(first - words // 3, len(tokens) - words))
    chosen = tokens[start : start + words]
    cut = [Segment(text, matched) for text, matched in chosen]
    if start > 0:
        cut.insert(0, Segment("… ", False))
    if start + words < len(tokens):
        cut[-1] = Segment(cut[-1].text.rstrip(), cut[-1].match)
        cut.append(Segment(" …", False))
    return _merged(cut)


def _merged(parts: list[Segment]) -> list[Segment]:
    merged: list[Segment] = []
    for part in parts:
        if merged and merged[-1].match == part.match:
            merged[-1] = Segment(merged[-1].text + part.text, part.match)
        else:
            merged.append(part)
    return merged
