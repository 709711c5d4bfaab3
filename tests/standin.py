"""A stand-in for chatd's real-time side in browser tests: a real server on 127.0.0.1 (plain ASGI
on hypercorn) speaking chatd/PROTOCOL.md's WebSocket, SSE and long-poll, whose every event the
test writes. For what chatd does not send yet, or only at moments a test cannot pick: a reply
streamed piece by piece, a reconnect in the middle of one. It serves /widget.js as chatd does.

    standin = await StandIn.start(nursery)       # standin.url = "http://127.0.0.1:PORT"
    conn = await standin.connection()            # the next WebSocket (joined) or SSE stream
    await conn.send({"type": "message_delta", ...})
    await conn.close(1001)                       # WebSocket: that close code; SSE: stream ends
    standin.answer_poll({"messages": [...], "streaming": [...], "streamVersion": 2})
    standin.polls                                # each long-poll's query, in order

A long-poll gets the next answer queued (waiting up to its `wait`), else no messages and the
last `streaming` and `streamVersion` answered. With `refuse_stream_version`, a poll sending
streamVersion gets chatd's 400 for an unknown parameter (a chatd without streaming).

Uploads (issue 20's contract): `POST /api/chat/upload` (multipart: sessionId, file) answers 201
with the attachment and signed URLs under /files/, or chatd's errors (400 no_file/empty_file,
413 file_too_large over `upload_limit`, 415 file_type_not_allowed: the type is decided by the
bytes). Every request is recorded in `uploads`, a dropped one too (`dropped`).

    standin.hold_uploads(1 << 20)     # read each body up to 1 MiB, then stop reading ...
    upload = await standin.held()     # ... (the browser's progress stands still) ...
    standin.release_uploads()         # ... and read on
    standin.refuse_upload(503, "storage_full", retry_after=1)   # the next upload, once
    standin.expire_urls()             # the URLs given so far answer 403 from now on

`POST /api/chat/send` (how SSE and long-poll send) is recorded in `sent` and acknowledged.

    standin.refuse_connections()      # the server goes: every connection cut, connects refused
    standin.accept_connections()      # back, on the same port
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import trio
from hypercorn.config import Config, Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from chatd.http.routes_web import widget_source

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]

_QUIET = logging.getLogger("tests.standin")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False
CORS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-headers", b"authorization, content-type"),
    (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
    (b"access-control-expose-headers", b"retry-after"),
]
# What the stand-in's "chatd" accepts, decided by the first bytes (as chatd decides by the bytes).
MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),  # refused: found, named, not allowed
]
ALLOWED = {"image/png", "image/jpeg", "image/gif", "application/pdf", "text/plain"}


@dataclass
class Connection:
    kind: str  # "websocket" or "sse"
    join: Message  # the join_chat frame; for SSE, the query (lastSeq)
    frames: list[Message] = field(default_factory=list)  # what the widget sent after joining
    ended: trio.Event = field(default_factory=trio.Event)
    _out: trio.MemorySendChannel[Message | int] | None = None

    async def send(self, *events: Message) -> None:
        assert self._out is not None
        for event in events:
            await self._out.send(event)

    async def close(self, code: int = 1001) -> None:
        assert self._out is not None
        await self._out.send(code)
        await self.ended.wait()


@dataclass
class Upload:
    """One `POST /api/chat/upload` as received: `status` is the answer (0: none yet, or never,
    when the browser dropped the connection: `dropped`)."""

    authorization: str
    origin: str
    fields: dict[str, str] = field(default_factory=dict)
    name: str = ""
    content_type: str = ""  # as the browser declared it
    data: bytes = b""
    received: int = 0  # bytes of the request body read so far
    status: int = 0
    answer: Message = field(default_factory=dict)
    dropped: bool = False
    done: trio.Event = field(default_factory=trio.Event)


class StandIn:
    def __init__(self) -> None:
        self.port = 0
        self.polls: list[dict[str, str]] = []
        self.refuse_stream_version = False
        self.uploads: list[Upload] = []
        self.sent: list[Message] = []  # each POST /api/chat/send's body (SSE and long-poll send so)
        self.upload_limit = 10 * 1024 * 1024
        self.files: dict[str, tuple[str, bytes]] = {}  # attachment id -> (type, bytes)
        self.file_requests: list[str] = []  # each GET of a file: its path and query
        self._signature = 1  # URLs signed with an older one are expired
        self._refusals: list[tuple[int, str, int]] = []
        self._hold: int | None = None
        self._release = trio.Event()
        self._held_in, self._held = trio.open_memory_channel[Upload](16)
        self._sock: socket.socket | None = None  # listening; None while refusing
        self._nursery: trio.Nursery
        self._connections_in, self._connections = trio.open_memory_channel[Connection](16)
        self._answers_in, self._answers = trio.open_memory_channel[Message](16)
        self._last: Message = {"streaming": [], "streamVersion": 0}

    @classmethod
    async def start(cls, nursery: trio.Nursery) -> StandIn:
        standin = cls()
        standin._nursery = nursery
        standin._sock = standin._listen()
        await nursery.start(standin._serve, standin._sock)
        return standin

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def refuse_connections(self) -> None:
        """As tests/sink.py: the listening socket closes, which ends that hypercorn run and cuts
        every connection it had (a WebSocket, an upload half sent); connects are refused."""
        sock, self._sock = self._sock, None
        if sock is not None:
            trio.lowlevel.notify_closing(sock)
            sock.close()

    def accept_connections(self) -> None:
        if self._sock is None:
            self._sock = self._listen()
            self._nursery.start_soon(self._serve, self._sock)

    def _listen(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # rebind despite TIME_WAIT
        sock.bind(("127.0.0.1", self.port))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        return sock

    async def _serve(
        self, sock: socket.socket, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED
    ) -> None:
        config = Config()
        config.accesslog = None
        config.errorlog = _QUIET
        app = wrap_app(self._asgi, config.wsgi_max_body_size, "asgi")  # type: ignore[arg-type]
        try:
            await worker_serve(
                app, config, sockets=Sockets([], [sock], []), task_status=task_status
            )
        except* trio.ClosedResourceError:
            pass  # refused: the accept loop saw its socket closed, and this run ended
        finally:
            if sock is self._sock:  # cancelled with the test's nursery, not refused
                sock.close()

    async def connection(self, timeout: float = 10) -> Connection:
        with trio.fail_after(timeout):
            return await self._connections.receive()

    def answer_poll(self, body: Message) -> None:
        self._answers_in.send_nowait(body)

    def hold_uploads(self, after_bytes: int) -> None:
        self._hold, self._release = after_bytes, trio.Event()

    async def held(self, timeout: float = 10) -> Upload:
        """The next upload that stopped being read at the hold."""
        with trio.fail_after(timeout):
            return await self._held.receive()

    def release_uploads(self) -> None:
        self._hold = None
        self._release.set()

    def refuse_upload(self, status: int, code: str, retry_after: int = 0) -> None:
        self._refusals.append((status, code, retry_after))

    def expire_urls(self) -> None:
        self._signature += 1

    def completed_uploads(self) -> list[Upload]:
        return [u for u in self.uploads if u.status == 201]

    def attachment(self, name: str, data: bytes) -> Message:
        """A file stored as if uploaded, in the form messages carry it (`attachments`)."""
        status, answer, _ = self._judge(Upload("", "", {"file": "<file>"}, name, "", data))
        assert status == 201, answer
        return as_attachment(answer)

    async def _asgi(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            return await send({"type": "lifespan.shutdown.complete"})
        if scope["type"] == "websocket":
            return await self._websocket(receive, send)
        query = dict(parse_qsl(scope["query_string"].decode()))
        path, method = scope["path"], scope["method"]
        if method == "OPTIONS":
            return await _respond(send, 204, b"")
        if path == "/widget.js":
            return await _respond(send, 200, widget_source(), b"application/javascript")
        if path == "/api/chat/send" and method == "POST":
            return await self._send(receive, send)
        if path == "/api/chat/upload" and method == "POST":
            return await self._upload(scope, receive, send)
        if path.startswith("/files/"):
            return await self._file(path, query, scope, send)
        if path.startswith("/api/chat/events/"):
            return await self._sse(query, receive, send)
        if path.startswith("/api/chat/messages/"):
            return await self._poll(query, send)
        await _respond(send, 404, b'{"error": {"code": "not_found"}}')

    async def _websocket(self, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        first = await receive()
        if first["type"] != "websocket.receive":
            return
        join = json.loads(first["text"])
        await send({"type": "websocket.send", "text": json.dumps(_joined(join))})
        out, events = trio.open_memory_channel[Message | int](64)
        conn = Connection("websocket", join, _out=out)
        await self._connections_in.send(conn)
        try:
            async with trio.open_nursery() as nursery:

                async def read() -> None:
                    while (frame := await receive())["type"] == "websocket.receive":
                        conn.frames.append(json.loads(frame["text"]))
                    nursery.cancel_scope.cancel()  # the widget went

                nursery.start_soon(read)
                async for event in events:
                    if isinstance(event, int):
                        await send({"type": "websocket.close", "code": event})
                        break
                    await send({"type": "websocket.send", "text": json.dumps(event)})
                nursery.cancel_scope.cancel()
        finally:
            conn.ended.set()

    async def _sse(self, query: dict[str, str], receive: Receive, send: Send) -> None:
        out, events = trio.open_memory_channel[Message | int](64)
        conn = Connection("sse", query, _out=out)
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-store")]
        await send({"type": "http.response.start", "status": 200, "headers": headers + CORS})
        await send({"type": "http.response.body", "body": b": hello\n\n", "more_body": True})
        await self._connections_in.send(conn)
        try:
            async with trio.open_nursery() as nursery:

                async def watch() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    nursery.cancel_scope.cancel()

                nursery.start_soon(watch)
                async for event in events:
                    if isinstance(event, int):
                        await send({"type": "http.response.body", "body": b"", "more_body": False})
                        break
                    chunk = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                nursery.cancel_scope.cancel()
        finally:
            conn.ended.set()

    async def _poll(self, query: dict[str, str], send: Send) -> None:
        self.polls.append(query)
        if self.refuse_stream_version and "streamVersion" in query:
            error = {"code": "unknown_field", "message": "unknown", "field": "streamVersion"}
            return await _respond(send, 400, json.dumps({"error": error}).encode())
        body: Message = {"messages": []}
        try:
            body = self._answers.receive_nowait()
        except trio.WouldBlock:
            with trio.move_on_after(float(query.get("wait", "0"))):
                body = await self._answers.receive()
        self._last = {key: body.get(key, self._last[key]) for key in self._last}
        answer = {"messages": [], "pagination": {}, **self._last, **body}
        await _respond(send, 200, json.dumps(answer).encode())

    async def _send(self, receive: Receive, send: Send) -> None:
        """Accepted, as chatd acknowledges; the message itself is the test's to send as an event."""
        body = bytearray()
        while (event := await receive())["type"] == "http.request":
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        self.sent.append(json.loads(body))
        seq = len(self.sent)
        accepted = {"messageId": f"sent-{seq}", "status": "pending", "seq": seq}
        await _respond(send, 201, json.dumps(accepted).encode())

    async def _upload(self, scope: Message, receive: Receive, send: Send) -> None:
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        upload = Upload(headers.get("authorization", ""), headers.get("origin", ""))
        self.uploads.append(upload)
        try:
            body = await self._read(upload, receive)
            if body is None:
                return
            _parse_form(headers.get("content-type", ""), body, upload)
            upload.status, upload.answer, extra = self._judge(upload)
            out = json.dumps(upload.answer).encode()
            await _respond(send, upload.status, out, extra=extra)
        finally:
            upload.dropped = upload.status == 0  # the browser went, or the server (cut)
            upload.done.set()

    async def _read(self, upload: Upload, receive: Receive) -> bytes | None:
        """The whole body (None if the browser went first), stopping at the hold until released."""
        body = bytearray()
        while True:
            event = await receive()
            if event["type"] == "http.disconnect":
                return None
            body += event.get("body", b"")
            upload.received = len(body)
            if self._hold is not None and len(body) >= self._hold:
                release = self._release
                self._held_in.send_nowait(upload)
                await release.wait()
            if not event.get("more_body"):
                return bytes(body)

    def _judge(self, upload: Upload) -> tuple[int, Message, list[tuple[bytes, bytes]]]:
        if self._refusals:
            status, code, retry_after = self._refusals.pop(0)
            extra = [(b"retry-after", str(retry_after).encode())] if retry_after else []
            return status, _error(code, f"refused by the test: {code}"), extra
        if "file" not in upload.fields:
            return 400, _error("no_file", "no file in the form field 'file'"), []
        if not upload.data:
            return 400, _error("empty_file", "the file is empty"), []
        if len(upload.data) > self.upload_limit:
            return 413, _error("file_too_large", f"the limit is {self.upload_limit} bytes"), []
        found = _sniff(upload.data)
        if found not in ALLOWED:
            return 415, _error("file_type_not_allowed", f"found {found}"), []
        attachment_id = f"att-{len(self.files) + 1}"
        self.files[attachment_id] = (found, upload.data)
        url = f"{self.url}/files/{attachment_id}?sig={self._signature}"
        kind = "image" if found.startswith("image/") else "file"
        answer: Message = {
            "attachmentId": attachment_id,
            "name": upload.name,
            "type": found,
            "size": len(upload.data),
            "sha256": hashlib.sha256(upload.data).hexdigest(),
            "kind": kind,
            "url": url,
            "expiresAt": "2030-01-01T00:00:00Z",
        }
        if found == "image/png":
            answer["width"], answer["height"] = struct.unpack(">II", upload.data[16:24])
        if kind == "image":
            answer["thumbnailUrl"] = url + "&thumb=1"
        return 201, answer, []

    async def _file(self, path: str, query: dict[str, str], scope: Message, send: Send) -> None:
        self.file_requests.append(f"{path}?{scope['query_string'].decode()}")
        found = self.files.get(path.removeprefix("/files/"))
        if found is None:
            return await _respond(send, 404, json.dumps(_error("not_found", "no file")).encode())
        if query.get("sig") != str(self._signature):
            return await _respond(send, 403, json.dumps(_error("url_expired", "expired")).encode())
        await _respond(send, 200, found[1], found[0].encode())


def as_attachment(answer: Message) -> Message:
    """An upload's answer as a message's `attachments` item."""
    keys = ("name", "type", "size", "kind", "width", "height", "url", "thumbnailUrl")
    return {"id": answer["attachmentId"], **{k: answer[k] for k in keys if k in answer}}


def _parse_form(content_type: str, body: bytes, upload: Upload) -> None:
    """multipart/form-data: text fields into `fields`, the part named `file` into the upload."""
    boundary = content_type.partition("boundary=")[2].strip('"').encode()
    if not boundary:
        return
    decoder = MultipartDecoder(boundary)
    decoder.receive_data(body)
    decoder.receive_data(None)
    current, data = "", bytearray()
    while not isinstance(event := decoder.next_event(), Epilogue | NeedData):
        if isinstance(event, File):
            current, upload.name = event.name, event.filename
            upload.content_type = event.headers.get("content-type", "")
        elif isinstance(event, Field):
            current = event.name
        elif isinstance(event, Data):
            data += event.data
            if not event.more_data:
                if current == "file":
                    upload.data = bytes(data)
                upload.fields[current] = "<file>" if current == "file" else data.decode()
                data = bytearray()


def _sniff(data: bytes) -> str:
    for magic, kind in MAGIC:
        if data.startswith(magic):
            return kind
    try:
        data.decode()
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain"


def _error(code: str, message: str) -> Message:
    return {"error": {"code": code, "message": message}}


def _joined(join: Message) -> Message:
    return {
        "type": "joined",
        "sessionId": join.get("sessionId"),
        "lastSeq": join.get("lastSeq", 0),
        "heartbeatIntervalSeconds": 30,
    }


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    kind: bytes = b"application/json",
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode()), *CORS]
    headers += extra or []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
