"""Shoppers whose replies stream, in a process of their own (its CPU is not the server's).

python -m tests.benchmarks.streamclients (chatd | bare) URL --connections N --seconds S
        [--warmup W] [--think T] [--origin O] [--first F]
    N WebSocket connections, each a conversation: send a message, read the reply's pieces
    until it ends, wait T seconds, again. chatd: joined to sessions F .. F + N - 1
    (tests/benchmarks/wsjoin.py), a `send_message` frame, pieces are `message_delta` events
    and the stored `new_message` ends a reply. bare (relaybare.py): any frame starts a
    stream, each line of it comes back as a frame, the `end` line ends it.
    Prints one JSON line: time to first token (the first piece's kernel arrival stamp, less
    the stamp the stand-in n8n put in it as it sent it: both time.time()) of the replies
    that began within the S seconds after the W-second warm-up, pieces received per second
    over those S seconds, and replies completed.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import trio

from tests.benchmarks.wsconn import Connection, connect
from tests.benchmarks.wsjoin import emit, open_joined, percentiles, raise_nofile_limit


class Tally:
    def __init__(self, start: float, end: float) -> None:
        self.start, self.end = start, end
        self.ttft: list[float] = []
        self.pieces = 0
        self.replies = 0
        self.errors: list[str] = []

    def inside(self, at: float) -> bool:
        return self.start <= at <= self.end


def piece_of(event: dict[str, Any], chatd: bool) -> str | None:
    """The text of a streamed piece, or None if `event` is none."""
    if chatd:
        return event["text"] if event.get("type") == "message_delta" else None
    return event.get("content") if event.get("type") == "item" else None


def ends_reply(event: dict[str, Any], chatd: bool) -> bool:
    if chatd:
        message = event.get("message")
        return event.get("type") == "new_message" and message["senderType"] != "user"
    return event.get("type") == "end"


async def converse(conn: Connection, n: int, chatd: bool, think: float, tally: Tally) -> None:
    for turn in range(1_000_000):
        if chatd:
            frame = {"type": "send_message", "content": "hello", "clientMessageId": f"c{n}.{turn}"}
            await conn.send_text(json.dumps(frame))
        else:
            await conn.send_text("go")
        done = False
        while not done:
            for text in await conn.receive_texts():
                event = json.loads(text)
                piece = piece_of(event, chatd)
                if piece is not None:
                    if tally.inside(conn.arrived):
                        tally.pieces += 1
                    if piece.startswith("t"):  # the first: stamped by the stand-in as it left
                        sent = float(piece[1:])
                        if tally.inside(sent):
                            tally.ttft.append(conn.arrived - sent)
                elif ends_reply(event, chatd):
                    done = True
                    if tally.inside(conn.arrived):
                        tally.replies += 1
                elif event.get("type") == "error":
                    tally.errors.append(str(event.get("code")))
        if think:
            await trio.sleep(think)


async def run(args: argparse.Namespace) -> None:
    raise_nofile_limit()
    chatd = args.mode == "chatd"
    limiter = trio.CapacityLimiter(50)
    conns: list[Connection] = []

    async def open_one(n: int) -> None:
        async with limiter:
            if chatd:
                conns.append(
                    await open_joined(
                        args.url, args.origin, args.first + n, True, stamp_arrivals=True
                    )
                )
            else:
                conns.append(await connect(args.url, args.origin, stamp_arrivals=True))

    async with trio.open_nursery() as nursery:
        for n in range(args.connections):
            nursery.start_soon(open_one, n)
    now = time.time()
    tally = Tally(now + args.warmup, now + args.warmup + args.seconds)
    started = time.process_time()
    async with trio.open_nursery() as nursery:
        for n, conn in enumerate(conns):
            nursery.start_soon(converse, conn, n, chatd, args.think, tally)
        await trio.sleep(args.warmup + args.seconds + 0.2)
        nursery.cancel_scope.cancel()
    for conn in conns:
        await trio.aclose_forcefully(conn.stream)
    emit(
        {
            "ttft": percentiles(tally.ttft),
            "pieces": tally.pieces,
            "rate": tally.pieces / args.seconds,
            "replies": tally.replies,
            "errors": tally.errors[:10],
            "cpu": time.process_time() - started,
        }
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="streamclients")
    parser.add_argument("mode", choices=["chatd", "bare"])
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--think", type=float, default=0.0)
    parser.add_argument("--origin", default=None)
    parser.add_argument("--first", type=int, default=0)
    trio.run(run, parser.parse_args(argv))


if __name__ == "__main__":
    main()
