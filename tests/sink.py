"""A real local HTTP server playing n8n in tests: a plain ASGI app served by hypercorn on Trio.

    sink = await Sink.start(nursery)           # sink.url = "http://127.0.0.1:PORT"
    sink.behave(Reply("hi"))                   # the default answer
    sink.behave_for(session_id, Status(500))   # this session's override (body "sessionId")
    sink.queue(Drop(), Status(503))            # one-shot answers, before the default
    await sink.wait_for(2)                     # sink.requests: list[Received]
    sink.refuse_connections()                  # port closed: connects are refused
    sink.accept_connections()                  # listening again, on the same port
    sink.behave(Stream(agent("Hel", "lo")))     # n8n's streaming response mode (NDJSON)
    await sink.stop()

Per request: the session's override, else the next queued behaviour, else the default; a
callable gets the `Received` request and returns the behaviour. Each waits `delay` s first.
The sink owns its listening socket (hypercorn's `worker_serve` takes it via `Sockets`), so
refuse/accept_connections act synchronously. One listening period is one hypercorn run; refusing
ends it and cuts its connections, held or delayed requests included (n8n going down).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import trio
from hypercorn.config import Config, Sockets
from hypercorn.events import Closed
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]

_QUIET = logging.getLogger("tests.sink")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes
    json: Any  # the parsed body, or None when it is not JSON
    arrived_at: float  # trio.current_time()
    perf: float  # time.perf_counter()

    def get(self, name: str) -> Any:
        """A top-level body field, else the same field in "metadata" (n8n Chat Trigger form)."""
        data = self.json if isinstance(self.json, dict) else {}
        metadata = data.get("metadata")
        if name not in data and isinstance(metadata, dict):
            return metadata.get(name)
        return data.get(name)

    @property
    def session_id(self) -> str | None:
        value = self.get("sessionId")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Reply:  # the guide's N8nWebhookResponse: {"sessionId", "response": {"content", ...}}
    content: str = "ok"
    type: str = "text"
    quick_replies: Sequence[Any] | None = None
    attachments: Sequence[Any] | None = None
    status: int = 200
    delay: float = 0
    actions: Sequence[Any] | None = None  # e.g. [{"type": "handoff", "reason": "..."}]


@dataclass(frozen=True)
class Output:  # {"output": text}: n8n's Chat Trigger / AI Agent form
    text: str
    status: int = 200
    delay: float = 0


@dataclass(frozen=True)
class Status:  # e.g. Status(503, headers={"Retry-After": "2"}); a JSON-looking body is JSON
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0


@dataclass(frozen=True)
class Ack(Status):  # accepted, no reply: Ack(202, b'{"message":"Workflow was started"}')
    status: int = 200


@dataclass(frozen=True)
class Html:
    status: int = 200
    delay: float = 0


@dataclass(frozen=True)
class Huge:  # a valid JSON body {"output": "xxx..."} of exactly `size` bytes, in chunks
    size: int = 10 * 1024 * 1024
    status: int = 200
    declare_length: bool = True  # False: no Content-Length, chunked transfer encoding
    delay: float = 0


@dataclass(frozen=True)
class Callback:  # 202 now; after callback_delay a signed POST to {chatd_url}/api/chat/webhook
    content: str
    chatd_url: str
    secret: str
    scheme: Literal["hex", "standard"] = "hex"
    status: int = 202
    ack_delay: float = 0
    callback_delay: float = 0.05
    times: int = 1  # >1 posts the identical bytes and headers again (a redelivery)

    @property
    def delay(self) -> float:
        return self.ack_delay


@dataclass(frozen=True)
class Drop:  # close the connection without a byte of answer (httpx: RemoteProtocolError)
    delay: float = 0


@dataclass(frozen=True)
class Hold:  # wait for sink.release(), then answer `then` (by default Reply("released"))
    then: Behaviour | None = None
    delay: float = 0


@dataclass(frozen=True)
class Wait:  # in a Stream's chunks: send nothing more until sink.release()
    pass


@dataclass(frozen=True)
class Stream:
    """n8n's "Streaming" response mode: 200 and its headers at once (chunked, no length), then
    each of `chunks` as it comes, `gap` seconds apart; `then` says how it ends: "end" (the
    response completes), "cut" (the connection closes mid-body), "hang" (silence until the
    sink stops or the client goes), "endless" (`chunks` again and again)."""

    chunks: Sequence[bytes | Wait]
    gap: float = 0.0
    then: Literal["end", "cut", "hang", "endless"] = "end"
    content_type: str = "application/json; charset=utf-8"
    status: int = 200
    delay: float = 0
    sent: list[float] = field(default_factory=list, compare=False)  # perf_counter per chunk


def chunk(kind: str, node: str = "agent", content: str | None = None, run: int = 0) -> bytes:
    """One NDJSON line as n8n writes it: JSON.stringify(chunk) + "\n"."""
    data: dict[str, Any] = {"type": kind}
    if content is not None:
        data["content"] = content
    data["metadata"] = {
        "nodeId": f"{node}-id",
        "nodeName": node,
        "itemIndex": 0,
        "runIndex": run,
        "timestamp": int(time.time() * 1000),
    }
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def agent(*tokens: str, node: str = "agent", run: int = 0) -> list[bytes]:
    """One node run's reply: begin, an item per token, end."""
    items = [chunk("item", node, token, run) for token in tokens]
    return [chunk("begin", node, run=run), *items, chunk("end", node, run=run)]


Behaviour = Reply | Output | Ack | Status | Html | Huge | Callback | Drop | Hold | Stream
Rule = Behaviour | Callable[[Received], Behaviour]


def sign(body: bytes, secret: str, scheme: Literal["hex", "standard"]) -> dict[str, str]:
    """Signature headers over the exact body bytes.

    "hex": X-Webhook-Signature = hex HMAC-SHA256 keyed with the secret's UTF-8 bytes verbatim.
    "standard": Standard Webhooks; a "whsec_<base64>" secret is base64-decoded into the key.
    """
    if scheme == "hex":
        return {"X-Webhook-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}
    key = base64.b64decode(secret[6:]) if secret.startswith("whsec_") else secret.encode()
    msg_id, timestamp = str(uuid.uuid4()), int(time.time())
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


@dataclass
class _Server:  # one listening period: one hypercorn run, and the socket it accepts on
    sock: socket.socket
    closed: bool = False  # a request still reaching it over an old connection is dropped


class Sink:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.callback_results: list[tuple[int, bytes]] = []  # status 0: the POST itself failed
        self.errors: list[Exception] = []  # the sink's own failures (each also answers 500)
        self.release_event = trio.Event()
        self.port = 0
        self._default: Rule = Reply()
        self._per_session: dict[str, Rule] = {}
        self._queued: deque[Rule] = deque()
        self._changed = trio.Event()
        self._server: _Server | None = None
        self._nursery: trio.Nursery
        self._cancel = trio.CancelScope()
        self._stopped = trio.Event()

    @classmethod
    async def start(cls, nursery: trio.Nursery) -> Sink:
        sink = cls()
        await nursery.start(sink._run)
        return sink

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/webhook"

    def behave(self, rule: Rule) -> None:
        self._default = rule

    def behave_for(self, session_id: str, rule: Rule) -> None:
        self._per_session[session_id] = rule

    def queue(self, *rules: Rule) -> None:
        self._queued.extend(rules)

    def release(self) -> None:
        """Answer every request held so far; later Hold requests wait for the next release."""
        self.release_event.set()
        self.release_event = trio.Event()

    def bodies(self) -> list[Any]:
        return [r.json for r in self.requests]

    def for_session(self, session_id: str) -> list[Received]:
        return [r for r in self.requests if r.session_id == session_id]

    async def wait_for(self, n: int, timeout: float = 10) -> list[Received]:
        """Until at least n requests have arrived; AssertionError after `timeout` seconds."""
        await self._wait(lambda: len(self.requests) >= n, timeout, f"{n} requests")
        return list(self.requests)

    async def wait_for_callbacks(self, n: int, timeout: float = 10) -> list[tuple[int, bytes]]:
        await self._wait(lambda: len(self.callback_results) >= n, timeout, f"{n} callbacks")
        return list(self.callback_results)

    def refuse_connections(self) -> None:
        """Close the listening socket: connects are refused once this returns. The connections
        already open are cut a moment later, as that hypercorn run ends; a request still
        reaching it meanwhile is dropped, unrecorded."""
        server, self._server = self._server, None
        if server is not None:
            server.closed = True
            trio.lowlevel.notify_closing(server.sock)  # hypercorn's accept() sees it closed
            server.sock.close()

    def accept_connections(self) -> None:
        """Listen on the same port again: connects succeed once this returns."""
        if self._server is None:
            self._server = _Server(self._listen())
            self._nursery.start_soon(self._serve, self._server)

    async def stop(self) -> None:
        self.refuse_connections()
        self._cancel.cancel()
        await self._stopped.wait()

    async def _wait(self, done: Callable[[], bool], seconds: float, what: str) -> None:
        with trio.move_on_after(seconds):
            while not done():
                await self._changed.wait()
            return
        raise AssertionError(
            f"the sink did not get {what} within {seconds:g} s: "
            f"{len(self.requests)} requests, {len(self.callback_results)} callbacks"
        )

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _run(self, *, task_status: trio.TaskStatus[None]) -> None:
        try:
            with self._cancel:
                async with trio.open_nursery() as nursery:  # hypercorn runs, callbacks
                    self._nursery = nursery
                    self._server = _Server(self._listen())
                    await nursery.start(self._serve, self._server)
                    task_status.started()
                    await trio.sleep_forever()  # open for later runs and callbacks until stop
        finally:
            self._stopped.set()

    def _listen(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # rebind despite TIME_WAIT
        try:
            sock.bind(("127.0.0.1", self.port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        return sock

    async def _serve(
        self, server: _Server, *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        config = Config()
        config.accesslog = None
        config.errorlog = _QUIET

        async def app(scope: Message, receive: Receive, send: Send) -> None:
            await self._asgi(scope, receive, send, server)

        try:
            await worker_serve(
                wrap_app(app, config.wsgi_max_body_size, "asgi"),  # type: ignore[arg-type]
                config,
                sockets=Sockets([], [server.sock], []),
                task_status=task_status,
            )
        except* trio.ClosedResourceError:
            # refuse_connections closed the socket under hypercorn's accept loop, which ends
            # this run; trio's serve_listeners closes each of its connections on the way out.
            pass
        finally:
            if not server.closed:  # cancelled (the test's nursery ended), not refused
                server.closed = True
                server.sock.close()

    async def _asgi(self, scope: Message, receive: Receive, send: Send, server: _Server) -> None:
        if scope["type"] == "lifespan":  # nothing to start or stop
            while (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            return await send({"type": "lifespan.shutdown.complete"})
        arrived_at, perf = trio.current_time(), time.perf_counter()
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        if server.closed:
            return await _drop(send)
        body = b"".join(chunks)
        received = Received(
            scope["method"], scope["path"], _headers(scope), body, _parse(body), arrived_at, perf
        )
        release = self.release_event  # a release() after this request arrived lets it go
        self.requests.append(received)
        self._notify()
        try:
            behaviour = self._choose(received)
            await trio.sleep(behaviour.delay)
            await self._answer(behaviour, received, send, release)
        except Exception as exc:
            self.errors.append(exc)
            raise

    def _choose(self, received: Received) -> Behaviour:
        session_id = received.session_id
        if session_id in self._per_session:
            rule = self._per_session[session_id]
        elif self._queued:
            rule = self._queued.popleft()
        else:
            rule = self._default
        return rule(received) if callable(rule) else rule

    async def _answer(
        self, behaviour: Behaviour, received: Received, send: Send, release: trio.Event
    ) -> None:
        match behaviour:
            case Reply():
                response: dict[str, Any] = {"content": behaviour.content, "type": behaviour.type}
                if behaviour.quick_replies is not None:
                    response["quickReplies"] = list(behaviour.quick_replies)
                if behaviour.attachments is not None:
                    response["attachments"] = list(behaviour.attachments)
                reply: dict[str, Any] = {"sessionId": received.session_id, "response": response}
                if behaviour.actions is not None:
                    reply["actions"] = list(behaviour.actions)
                await _respond(send, behaviour.status, _json(reply))
            case Output():
                await _respond(send, behaviour.status, _json({"output": behaviour.text}))
            case Status():  # and Ack
                await _respond(send, behaviour.status, behaviour.body, behaviour.headers)
            case Html():
                page = b"<!DOCTYPE html><html><body><h1>n8n</h1></body></html>"
                await _respond(send, behaviour.status, page, {"content-type": "text/html"})
            case Huge():
                await _stream_huge(send, behaviour)
            case Callback():
                await _respond(send, behaviour.status, b'{"message":"Workflow was started"}')
                self._nursery.start_soon(self._callback, behaviour, received)
            case Drop():
                await _drop(send)
            case Hold():
                await release.wait()
                await self._answer(behaviour.then or Reply("released"), received, send, release)
            case Stream():
                await self._stream(behaviour, send)

    async def _stream(self, stream: Stream, send: Send) -> None:
        headers = [(b"content-type", stream.content_type.encode())]
        await send({"type": "http.response.start", "status": stream.status, "headers": headers})
        while True:
            for number, data in enumerate(stream.chunks):
                if isinstance(data, Wait):
                    await self.release_event.wait()
                    continue
                if number and stream.gap:
                    await trio.sleep(stream.gap)
                await send({"type": "http.response.body", "body": data, "more_body": True})
                stream.sent.append(time.perf_counter())
            if stream.then != "endless":
                break
            await trio.sleep(stream.gap)
        match stream.then:
            case "end":
                await send({"type": "http.response.body", "body": b""})
            case "cut":
                await trio.sleep(0.05)  # let the last chunk leave before the socket closes
                await _drop(send)
            case "hang":
                await trio.sleep_forever()

    async def _callback(self, callback: Callback, received: Received) -> None:
        await trio.sleep(callback.callback_delay)
        body = _json(
            {
                "sessionId": received.session_id,
                "replyTo": received.get("messageId"),
                "response": {"content": callback.content, "type": "text"},
            }
        )
        headers = {
            "content-type": "application/json",
            **sign(body, callback.secret, callback.scheme),
        }
        url = f"{callback.chatd_url.rstrip('/')}/api/chat/webhook"
        async with httpx.AsyncClient(timeout=10) as client:
            for _ in range(callback.times):
                try:
                    response = await client.post(url, content=body, headers=headers)
                    self.callback_results.append((response.status_code, response.content))
                except httpx.HTTPError as exc:
                    self.callback_results.append((0, repr(exc).encode()))
                self._notify()


async def _respond(
    send: Send, status: int, body: bytes, headers: Mapping[str, str] | None = None
) -> None:
    names = {name.lower() for name in headers or {}}
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if body and "content-type" not in names:
        kind = "application/json" if body.lstrip()[:1] in (b"{", b"[") else "text/plain"
        raw.append((b"content-type", kind.encode()))
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _stream_huge(send: Send, huge: Huge) -> None:
    head, tail = b'{"output":"', b'"}'
    filler = huge.size - len(head) - len(tail)
    assert filler >= 0, f"Huge(size={huge.size}) is smaller than its JSON frame"
    headers = [(b"content-type", b"application/json")]
    if huge.declare_length:
        headers.append((b"content-length", str(huge.size).encode()))
    await send({"type": "http.response.start", "status": huge.status, "headers": headers})
    await send({"type": "http.response.body", "body": head, "more_body": True})
    for start in range(0, filler, _CHUNK):
        chunk = b"x" * min(_CHUNK, filler - start)
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": tail})


async def _drop(send: Send) -> None:
    """Close the connection before a byte of the answer. ASGI has no message for that, so this
    follows hypercorn's bound methods: HTTPStream.app_send -> H11Protocol -> TCPServer, whose
    protocol_send(Closed()) closes the socket. tests/integration/test_sink.py pins it."""
    await send.__self__.send.__self__.send(Closed())  # type: ignore[attr-defined]


def _headers(scope: Message) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()
