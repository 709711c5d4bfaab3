"""n8n's streamed replies, parsed as they arrive: the Webhook node's and the Chat Trigger's
"Streaming" response mode (n8n >= 1.105) answers with newline-delimited JSON chunks.

    {"type":"begin","metadata":{"nodeId","nodeName","itemIndex","runIndex","timestamp"}}
    {"type":"item","content":"Hel","metadata":{...}}      one token of the node's reply
    {"type":"end","metadata":{...}}
    {"type":"error","content"?:"...","metadata":{...}}    a node failed
    {"type":"keepalive"}                                   n8n 2.x, every 30 s of a run

Each `begin`...`end` of one node run and item, keyed by (nodeId, runIndex, itemIndex), is a run:
one bot message. The reply is complete only when the HTTP response ends, and then only if every
run that began has ended. Pure: bytes in, events out; the caller owns the connection and time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from chatd.core.jsonbody import check_value, parse_json
from chatd.errors import BadRequest

# A chunk is a token with its metadata; a whole 4,000-character reply in one item, escaped
# (\uXXXX), fits too. Anything longer is not n8n's stream.
MAX_LINE_BYTES = 64 * 1024
# A piece longer than this is passed on in several, so every cross-process notification of
# pieces stays far below PostgreSQL's 8,000-byte payload limit (6 bytes per escaped character).
MAX_PIECE_CHARS = 1000
# Chunk types that open a stream. A first line of another shape is a whole (non-streamed) reply.
STREAM_TYPES = frozenset({"begin", "item", "end", "error", "keepalive"})
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-seq")

RunKey = tuple[str, int, int]  # (nodeId, runIndex, itemIndex)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("a number is out of range")
    return value


# Built once: a line per token is read, and json.loads builds a decoder per call when given
# these hooks. What it refuses, parse_json (chatd/core/jsonbody.py) explains.
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)


class StreamFailed(Exception):
    """The stream cannot give a whole reply; `reason` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Began:
    """Run number `run` (0, 1, ... in the order runs began) has begun."""

    run: int


@dataclass(frozen=True)
class Piece:
    """The next piece of run `run`'s text: `index` counts that run's pieces from 0."""

    run: int
    index: int
    text: str


Event = Began | Piece


@dataclass
class Run:
    key: RunKey
    node_name: str
    parts: list[str] = field(default_factory=list)
    chars: int = 0
    open: bool = True

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def pieces(self) -> int:
        return len(self.parts)


def is_ndjson(content_type: str) -> bool:
    """A content type that says "a stream" by itself (n8n's own says application/json)."""
    return content_type.split(";", 1)[0].strip().lower() in NDJSON_TYPES


def starts_stream(first_line: bytes) -> bool:
    """Whether a response whose first line this is (without its newline) is n8n's stream: a JSON
    object whose `type` is a stream chunk's. A whole reply ({"output": ...}, {"response": ...},
    pretty-printed JSON, an HTML page) never is."""
    line = first_line.strip()
    if not line.startswith(b"{") or not line.endswith(b"}"):
        return False
    try:
        chunk = parse_json(line)
    except BadRequest:
        return False
    return isinstance(chunk, dict) and chunk.get("type") in STREAM_TYPES


class StreamParser:
    """Feed it the response body in whatever pieces the network gives; it answers with the
    events each completes, and raises StreamFailed the moment the stream cannot be a reply.

    Lines are split on the byte b"\\n", which never occurs inside a multi-byte UTF-8 sequence, so
    a character cut between two network chunks is whole again in its line, and each complete
    line is decoded strictly (invalid UTF-8 fails the stream).
    """

    def __init__(self, *, max_reply_length: int, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._max_reply_length = max_reply_length
        self._max_line_bytes = max_line_bytes
        self._partial: list[bytes] = []  # the current line so far
        self._partial_size = 0
        self._lines = 0
        self._runs: dict[RunKey, int] = {}
        self.runs: list[Run] = []  # in the order they began
        self._error: str | None = None  # an error chunk, forgiven if a run begins after it
        self._failed: StreamFailed | None = None

    def feed(self, data: bytes) -> list[Event]:
        if self._failed is not None:
            raise self._failed
        try:
            return self._feed(data)
        except StreamFailed as exc:
            self._failed = exc
            raise

    def close(self) -> list[Event]:
        """The stream ended cleanly (the HTTP response is complete): the events of its last
        line, if that had no newline (n8n ends every chunk with one; others may not)."""
        if self._failed is not None or not self._partial_size:
            return []
        tail = b"".join(self._partial)
        self._partial, self._partial_size = [], 0
        try:
            return self._line(tail)
        except StreamFailed as exc:
            self._failed = exc
            raise

    def result(self) -> list[Run]:
        """After close(): every run, in the order they began (some may hold only whitespace),
        or StreamFailed if the stream does not make a whole reply."""
        if self._failed is not None:
            raise self._failed
        if self._error is not None:
            raise StreamFailed(self._error)
        unended = next((run for run in self.runs if run.open), None)
        if unended is not None:
            raise StreamFailed(f"the reply of n8n node {unended.node_name!r} began and never ended")
        if not any(run.text.strip() for run in self.runs):
            raise StreamFailed("the stream ended without any reply text")
        return self.runs

    def _feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            piece = data[start:end]
            if self._partial:
                self._check_size(self._partial_size + len(piece))
                piece = b"".join([*self._partial, piece])
                self._partial, self._partial_size = [], 0
            self._check_size(len(piece))
            events.extend(self._line(piece))
            start = end + 1
        if start < len(data):
            rest = data[start:]
            self._partial_size += len(rest)
            self._check_size(self._partial_size)
            self._partial.append(rest)
        return events

    def _check_size(self, size: int) -> None:
        if size > self._max_line_bytes:
            raise StreamFailed(f"a line of the stream is longer than {self._max_line_bytes} bytes")

    def _line(self, raw: bytes) -> list[Event]:
        self._lines += 1
        if not raw.strip():
            return []
        chunk = self._parse(raw)
        if not isinstance(chunk, dict) or not isinstance(chunk.get("type"), str):
            raise StreamFailed(f"line {self._lines} of the stream is not a chunk with a type")
        match chunk["type"]:
            case "begin":
                return self._begin(chunk)
            case "item":
                return self._item(chunk)
            case "end":
                run = self._run(chunk)
                if run is not None:
                    run.open = False
                return []
            case "error":
                self._on_error(chunk)
                return []
            case _:  # keepalive, and whatever later versions add
                return []

    def _parse(self, raw: bytes) -> Any:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise StreamFailed(f"line {self._lines} of the stream is not valid UTF-8") from None
        try:
            chunk = _DECODER.decode(text)
        except (ValueError, RecursionError):  # the slow path says exactly what is wrong
            try:
                parse_json(raw)
            except BadRequest as exc:
                raise StreamFailed(f"line {self._lines} of the stream: {exc.message}") from None
            raise AssertionError("a line only the fast decoder refused") from None
        # Only an escape (\u0000, a lone \ud800) can put in a string what PostgreSQL cannot
        # store (a raw NUL is invalid JSON; the text is valid UTF-8): such a line is walked
        # whole, as its node's name and error text may end up in the job's last error.
        if b"\\u" in raw:
            try:
                check_value(chunk, "", 0)
            except BadRequest as exc:
                raise StreamFailed(f"line {self._lines} of the stream: {exc.message}") from None
        return chunk

    def _key(self, chunk: dict[str, Any]) -> tuple[RunKey, str]:
        metadata = chunk.get("metadata")
        meta = metadata if isinstance(metadata, dict) else {}
        node_id = meta.get("nodeId")
        run_index, item_index = meta.get("runIndex"), meta.get("itemIndex")
        key = (
            node_id if isinstance(node_id, str) else "",
            run_index if type(run_index) is int else 0,
            item_index if type(item_index) is int else 0,
        )
        name = meta.get("nodeName")
        return key, name if isinstance(name, str) else key[0] or "unnamed"

    def _run(self, chunk: dict[str, Any]) -> Run | None:
        key, _name = self._key(chunk)
        number = self._runs.get(key)
        return None if number is None else self.runs[number]

    def _begin(self, chunk: dict[str, Any]) -> list[Event]:
        key, name = self._key(chunk)
        self._error = None  # n8n went on after an error (a tool's, answered by the agent)
        number = self._runs.get(key)
        if number is not None:  # the same run again: it goes on where it was
            self.runs[number].open = True
            return []
        self._runs[key] = len(self.runs)
        self.runs.append(Run(key, name))
        return [Began(len(self.runs) - 1)]

    def _item(self, chunk: dict[str, Any]) -> list[Event]:
        content = chunk.get("content")
        if content is None:
            return []
        if not isinstance(content, str):
            raise StreamFailed(f"line {self._lines} of the stream: item content is not a string")
        events: list[Event] = []
        key, _name = self._key(chunk)
        if key not in self._runs:  # an item without its begin: the run begins here
            events.extend(self._begin(chunk))
        number = self._runs[key]
        run = self.runs[number]
        run.chars += len(content)
        if run.chars > self._max_reply_length:
            raise StreamFailed(f"a reply is longer than {self._max_reply_length} characters")
        for start in range(0, len(content), MAX_PIECE_CHARS):
            text = content[start : start + MAX_PIECE_CHARS]
            events.append(Piece(number, run.pieces, text))
            run.parts.append(text)
        return events

    def _on_error(self, chunk: dict[str, Any]) -> None:
        _key, name = self._key(chunk)
        content = chunk.get("content")
        detail = content if isinstance(content, str) and content.strip() else "no description"
        reason = f"n8n node {name!r} failed: {detail[:200]}"
        open_run = next((run for run in self.runs if run.open), None)
        if open_run is not None:  # a reply was being written: it may be cut short
            raise StreamFailed(reason)
        # Otherwise it fails the stream unless a run begins after it: n8n reports a failed AI
        # tool (or a node set to continue on error) and goes on; the agent answers anyway.
        self._error = reason
