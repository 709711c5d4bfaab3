"""A tiny real SMTP server on 127.0.0.1 for tests (trio): it speaks enough of RFC 5321 for
smtplib (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT, no TLS or AUTH) and keeps every mail."""

from __future__ import annotations

from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from functools import partial

import trio


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: Message


@dataclass
class SmtpSink:
    port: int = 0
    mails: list[Mail] = field(default_factory=list)
    _arrived: trio.Event = field(default_factory=trio.Event)

    async def wait_for(self, n: int, timeout: float = 10.0) -> list[Mail]:
        with trio.fail_after(timeout):
            while len(self.mails) < n:
                await self._arrived.wait()
                self._arrived = trio.Event()
        return list(self.mails)

    def _keep(self, mail: Mail) -> None:
        self.mails.append(mail)
        self._arrived.set()


async def start_smtp(nursery: trio.Nursery) -> SmtpSink:
    sink = SmtpSink()
    listeners = await nursery.start(
        partial(trio.serve_tcp, partial(_session, sink), 0, host="127.0.0.1")
    )
    sink.port = listeners[0].socket.getsockname()[1]
    return sink


class _Lines:
    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._buffer = b""

    async def read(self) -> bytes | None:
        while b"\r\n" not in self._buffer:
            data = await self._stream.receive_some(65536)
            if not data:
                return None
            self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\r\n")
        return line


async def _session(sink: SmtpSink, stream: trio.SocketStream) -> None:
    lines = _Lines(stream)

    async def say(text: str) -> None:
        await stream.send_all(text.encode() + b"\r\n")

    sender, recipients = "", []
    async with stream:
        await say("220 test-smtp ready")
        while (line := await lines.read()) is not None:
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                await say("250-test-smtp\r\n250 8BITMIME")
            elif verb == b"MAIL":
                sender, recipients = line.decode().split(":", 1)[1].strip(" <>"), []
                await say("250 ok")
            elif verb == b"RCPT":
                recipients.append(line.decode().split(":", 1)[1].strip(" <>"))
                await say("250 ok")
            elif verb == b"DATA":
                await say("354 end with <CRLF>.<CRLF>")
                body = []
                while (data := await lines.read()) not in (b".", None):
                    assert data is not None
                    body.append(data[1:] if data.startswith(b"..") else data)
                sink._keep(Mail(sender, recipients, message_from_bytes(b"\r\n".join(body))))
                await say("250 queued")
            elif verb == b"QUIT":
                await say("221 bye")
                return
            else:  # RSET, NOOP
                await say("250 ok")
