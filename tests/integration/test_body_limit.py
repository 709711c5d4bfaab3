"""A body over server.max_body_bytes gets 413, and the connection it came on still works.

Browsers reuse keep-alive connections: after an early answer (a 413, or a 401 before the body
was read) the next request on the same connection must be answered, not left hanging. A refused
body up to a bound is read and dropped (the connection stays open); past it the answer says
`Connection: close` and the connection is closed. Checked with httpx (what a client sees) and on
a raw socket (what is on the wire), for a declared Content-Length and for a chunked body.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import trio

from chatd.http.keepalive import DRAIN_MAX_BYTES
from tests.chat import new_session, table_counts
from tests.conftest import RunningChatd

TOO_BIG = 2 * 1024 * 1024  # the 2 MB; the default limit is 64 KiB
HEALTH = b"GET /api/chat/health HTTP/1.1\r\nHost: chatd\r\n\r\n"


def big_send_body(session_id: str) -> bytes:
    return json.dumps({"sessionId": session_id, "content": "x" * TOO_BIG}).encode()


async def chunks(data: bytes, size: int = 16384) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def local_port(response: httpx.Response) -> int:
    """The client's end of the connection `response` came on."""
    port: int = response.extensions["network_stream"].get_extra_info("client_addr")[1]
    return port


async def refused_then_answered(chatd: RunningChatd, content: bytes | AsyncIterator[bytes]) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        before = await table_counts(chatd.services.pool)
        with trio.fail_after(10):
            refused = await client.post(
                "/api/chat/send",
                headers={**session.auth, "Content-Type": "application/json"},
                content=content,
            )
            assert refused.status_code == 413
            assert refused.json()["error"]["code"] == "payload_too_large"
            after = await client.get("/api/chat/health")
        assert after.status_code in (200, 503)  # answered (health may say the queue is off)
        assert local_port(after) == local_port(refused)  # on the same connection
        assert await table_counts(chatd.services.pool) == before


async def test_after_a_413_for_a_declared_length_the_next_request_is_answered(
    chatd: RunningChatd,
) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
    await refused_then_answered(chatd, big_send_body(session.id))


async def test_after_a_413_for_a_chunked_body_the_next_request_is_answered(
    chatd: RunningChatd,
) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
    await refused_then_answered(chatd, chunks(big_send_body(session.id)))


async def test_after_an_answer_that_never_read_the_body_the_next_request_is_answered(
    chatd: RunningChatd,
) -> None:
    """Not only 413: the admin API refuses a missing token before it reads any body."""
    async with chatd.client() as client:
        with trio.fail_after(10):
            refused = await client.post("/api/admin/broadcast", content=b"{" + b" " * 500_000)
            assert refused.status_code in (401, 404)
            after = await client.get("/api/chat/health")
        assert local_port(after) == local_port(refused)


async def test_a_body_within_the_limit_keeps_the_connection_alive(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        first = await client.get(f"/api/chat/session/{session.id}", headers=session.auth)
        second = await client.get(f"/api/chat/session/{session.id}", headers=session.auth)
        assert (first.status_code, second.status_code) == (200, 200)
        assert first.headers.get("connection", "").lower() != "close"
        assert local_port(first) == local_port(second)


class RawConnection:
    """One TCP connection, spoken to byte by byte."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def response(self) -> tuple[bytes, bytes]:
        """(head, body) of the next response, by its Content-Length."""
        while b"\r\n\r\n" not in self.buffer:
            data = await self.stream.receive_some()
            assert data, f"closed before a response: {bytes(self.buffer)[:200]!r}"
            self.buffer.extend(data)
        head, _, rest = bytes(self.buffer).partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.lower().split(b"\r\n")
            if line.startswith(b"content-length:")
        )
        while len(rest) < length:
            data = await self.stream.receive_some()
            assert data, "closed mid-response"
            rest += data
        self.buffer[:] = rest[length:]
        return head.lower(), rest[:length]

    async def closed(self) -> bool:
        """True if the server closes the connection (EOF or reset) rather than say more."""
        try:
            return await self.stream.receive_some() == b""
        except trio.BrokenResourceError:
            return True


async def raw_connection(url: str) -> RawConnection:
    host, port = url.removeprefix("http://").split(":")
    return RawConnection(await trio.open_tcp_stream(host, int(port)))


# With a token (any: the body is judged before it), since a send without one is 401 at once.
POST_HEAD = (
    b"POST /api/chat/send HTTP/1.1\r\nHost: chatd\r\nContent-Type: application/json\r\n"
    b"Authorization: Bearer some-token\r\n"
)


async def test_on_the_wire_a_declared_length_over_the_limit_is_read_and_dropped(
    chatd: RunningChatd,
) -> None:
    body = b"x" * TOO_BIG
    conn = await raw_connection(chatd.url)
    async with conn.stream, trio.open_nursery() as nursery:
        with trio.fail_after(10):
            nursery.start_soon(
                conn.send, POST_HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body
            )
            head, _ = await conn.response()
            assert head.startswith(b"http/1.1 413")
            assert b"connection: close" not in head
            await conn.send(HEALTH)  # the same connection, still in use
            head, _ = await conn.response()
            assert head.startswith(b"http/1.1 200") or head.startswith(b"http/1.1 503")


async def test_on_the_wire_a_chunked_body_over_the_limit_is_read_and_dropped(
    chatd: RunningChatd,
) -> None:
    chunk = b"x" * 16384
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(TOO_BIG // len(chunk)))
    conn = await raw_connection(chatd.url)
    async with conn.stream, trio.open_nursery() as nursery:
        with trio.fail_after(10):
            chunked = POST_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + body + b"0\r\n\r\n"
            nursery.start_soon(conn.send, chunked)
            head, _ = await conn.response()
            assert head.startswith(b"http/1.1 413")
            assert b"connection: close" not in head
            await conn.send(HEALTH)
            head, _ = await conn.response()
            assert head.startswith(b"http/1.1 200") or head.startswith(b"http/1.1 503")


async def test_on_the_wire_a_body_past_the_drain_bound_gets_connection_close(
    chatd: RunningChatd,
) -> None:
    """Announced larger than is worth reading: 413 with Connection: close, then really closed
    (the body itself is never sent here, so the close is clean)."""
    conn = await raw_connection(chatd.url)
    async with conn.stream:
        with trio.fail_after(10):
            await conn.send(POST_HEAD + b"Content-Length: %d\r\n\r\n" % (DRAIN_MAX_BYTES * 10))
            head, body = await conn.response()
            assert head.startswith(b"http/1.1 413")
            assert b"connection: close" in head
            assert json.loads(body)["error"]["code"] == "payload_too_large"
            assert await conn.closed()


async def test_on_the_wire_a_stalled_body_is_not_waited_for_forever(chatd: RunningChatd) -> None:
    """A client that stops sending its (refused) body: answered within the drain time, with
    Connection: close, and closed."""
    conn = await raw_connection(chatd.url)
    async with conn.stream:
        with trio.fail_after(10):
            await conn.send(POST_HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
            await conn.send(b"%x\r\n%s\r\n" % (TOO_BIG // 16, b"x" * (TOO_BIG // 16)))
            await conn.send(b"%x\r\n%s\r\n" % (TOO_BIG // 16, b"x" * (TOO_BIG // 16)))
            head, _ = await conn.response()  # over the 64 KiB limit: refused, then it stalls
            assert head.startswith(b"http/1.1 413")
            assert b"connection: close" in head
            assert await conn.closed()
