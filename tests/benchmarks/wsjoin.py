"""Sessions by number and joined connections, shared by the WebSocket load clients and tests.

Session n is md5('session' || n) as a uuid, with token "token<n>": the same in SQL
(CREATE_SESSIONS) and in Python (`session_id`, `session_token`), so a client can join any session
a test inserted without being told its id. PUSH stores bot messages the way chatd stores one.
"""

from __future__ import annotations

import hashlib
import json
import resource
import uuid
from typing import Any

import trio

from tests.benchmarks.wsconn import Closed, Connection, connect

CREATE_SESSIONS = """
INSERT INTO chat_sessions (id, token_hash, expires_at)
SELECT md5('session' || n)::uuid::text, sha256(('token' || n)::bytea), now() + interval '1 day'
  FROM generate_series(%(first)s, %(first)s + %(count)s - 1) AS n
"""
# `count` bot messages into each session listed, as store_bot_message (sql/queries/queue.sql)
# stores one: seqs last_seq + 1 .. last_seq + count, last_seq bumped in the same statement, in
# seq order. The triggers NOTIFY every chatd process at commit.
PUSH = """
WITH s AS (
    UPDATE chat_sessions SET last_seq = last_seq + %(count)s, updated_at = now()
     WHERE id = ANY(%(ids)s)
 RETURNING id, last_seq
)
INSERT INTO chat_messages (id, session_id, sender_type, content, message_type, status, seq)
SELECT gen_random_uuid()::text, s.id, 'bot', %(content)s, 'text', 'delivered', seq
  FROM s, generate_series(s.last_seq - %(count)s + 1, s.last_seq) AS seq
 ORDER BY seq, s.id
RETURNING session_id, seq
"""
CONTENT = "Your order #123456 shipped this morning; it should arrive on Thursday."
CONNECT_ATTEMPTS = 3


def session_id(n: int) -> str:
    return str(uuid.UUID(hashlib.md5(f"session{n}".encode()).hexdigest()))


def session_token(n: int) -> str:
    return f"token{n}"


def push_params(ids: list[str], count: int = 1, content: str = CONTENT) -> dict[str, Any]:
    return {"ids": ids, "count": count, "content": content}


def join_frame(n: int) -> str:
    return json.dumps(
        {"type": "join_chat", "sessionId": session_id(n), "sessionToken": session_token(n)},
        separators=(",", ":"),
    )


def raise_nofile_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (children inherit it)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def failure(exc: BaseException) -> str:
    """How a connection failed, in a word or a close code."""
    return str(exc.code) if isinstance(exc, Closed) else type(exc).__name__


async def open_joined(
    url: str, origin: str | None, n: int, chatd: bool, *, stamp_arrivals: bool = False
) -> Connection:
    """A connection joined to session n (chatd: `join_chat` answered by `joined`), or one whose
    join frame came back (the echo). A refused connect is tried again (a full accept queue drops
    SYNs); a refused join is not."""
    for attempt in range(CONNECT_ATTEMPTS):
        try:
            conn = await connect(url, origin, stamp_arrivals=stamp_arrivals)
            break
        except OSError:
            if attempt == CONNECT_ATTEMPTS - 1:
                raise
            await trio.sleep(0.2 * (attempt + 1))
    try:
        await conn.send_text(join_frame(n))
        while True:
            for text in await conn.receive_texts():
                if not chatd:
                    return conn
                event = json.loads(text)
                if event.get("type") == "joined":
                    return conn
                if event.get("type") == "error":
                    raise Closed(f"join error {event.get('code')}")
    except BaseException:
        await trio.aclose_forcefully(conn.stream)
        raise


async def open_all(
    url: str,
    origin: str | None,
    first: int,
    count: int,
    chatd: bool,
    *,
    concurrency: int,
    stamp_arrivals: bool = False,
) -> list[Connection]:
    """Connections joined to sessions first .. first + count - 1, in that order."""
    conns: dict[int, Connection] = {}
    limiter = trio.CapacityLimiter(concurrency)

    async def one(n: int) -> None:
        async with limiter:
            conns[n] = await open_joined(
                url, origin, first + n, chatd, stamp_arrivals=stamp_arrivals
            )

    async with trio.open_nursery() as nursery:
        for n in range(count):
            nursery.start_soon(one, n)
    return [conns[n] for n in range(count)]


def percentiles(values: list[float]) -> dict[str, Any]:
    """count, p50, p99 and max (nearest rank) of `values`."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0}

    def at(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))]

    return {"count": len(ordered), "p50": at(0.5), "p99": at(0.99), "max": ordered[-1]}


def emit(result: dict[str, Any]) -> None:
    """One result: a JSON line on stdout."""
    print(json.dumps(result), flush=True)
