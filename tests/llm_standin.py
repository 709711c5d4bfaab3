"""A real local OpenAI-compatible server standing in for the model behind n8n's AI Agent.

    standin = await LlmStandin.start(nursery)          # its own socket on 127.0.0.1, port 0
    standin = await LlmStandin.start(nursery, sock=s)  # or a socket someone keeps (n8n's
                                                       # credential names its port for a session)
    standin.base_url                                   # "http://127.0.0.1:PORT/v1"
    standin.hold_after(3)                              # streams 3 tokens, then waits...
    standin.release()                                  # ...until this (the test saw a token)
    standin.requests                                   # every chat request, as sent

`POST /v1/chat/completions` answers `answer_for(last user message)`: deterministic Markdown
(bold, a list, a link) with the message quoted, streamed as Server-Sent Events
(`data: {chat.completion.chunk}` one token each, `token_delay` s apart, then `data: [DONE]`)
when the request says `"stream": true`, else one chat.completion. `GET /v1/models` lists
MODEL. A plain ASGI app on hypercorn, like tests/sink.py.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio
from hypercorn.config import Config, Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]

MODEL = "standin-1"
_QUIET = logging.getLogger("tests.llm_standin")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def answer_for(question: str) -> str:
    """The stand-in's whole answer to a user message: Markdown, with the message quoted."""
    quoted = " ".join(question.split())
    return (
        f'**Thanks for asking!** You wrote: "{quoted}"\n\n'
        "- Orders ship within *2 days*\n"
        "- Returns are free for 30 days: reply `RETURN`\n\n"
        "See [your orders](https://shop.example/orders) for details."
    )


def tokens_of(text: str) -> list[str]:
    """The pieces the answer streams in: each word with the whitespace before it."""
    return re.findall(r"\s*\S+", text)


@dataclass(frozen=True)
class ChatRequest:
    path: str
    headers: dict[str, str]  # lower-case names
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages = self.body.get("messages")
        return messages if isinstance(messages, list) else []

    @property
    def last_user_message(self) -> str:
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return _text(message.get("content"))
        return ""

    def conversation(self) -> list[tuple[str, str]]:
        """(role, text) of every message, system prompt first, as the model was given them."""
        return [(str(m.get("role")), _text(m.get("content"))) for m in self.messages]


class LlmStandin:
    def __init__(self, *, token_delay: float = 0.02) -> None:
        self.token_delay = token_delay
        self.requests: list[ChatRequest] = []
        self.finished: list[bool] = []  # per request: every token of its answer is sent
        self.other_requests: list[tuple[str, str]] = []  # (method, path) of anything else
        self.port = 0
        self._hold_after: int | None = None
        self._released = trio.Event()

    @classmethod
    async def start(cls, nursery: trio.Nursery, *, sock: socket.socket | None = None) -> LlmStandin:
        """Serve until the nursery is cancelled. `sock` (listening) is served and left open."""
        standin = cls()
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sock.listen(64)
        else:
            sock = sock.dup()  # hypercorn closes what it serves; the caller keeps the original
        standin.port = sock.getsockname()[1]
        await nursery.start(standin._serve, sock)
        return standin

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def hold_after(self, count: int) -> None:
        """Streamed answers stop after `count` tokens until release()."""
        self._hold_after = count
        self._released = trio.Event()

    def release(self) -> None:
        self._released.set()

    async def _serve(self, sock: socket.socket, *, task_status: trio.TaskStatus[Any]) -> None:
        config = Config()
        config.accesslog = None
        config.errorlog = _QUIET
        try:
            await worker_serve(
                wrap_app(self._asgi, config.wsgi_max_body_size, "asgi"),  # type: ignore[arg-type]
                config,
                sockets=Sockets([], [sock], []),
                task_status=task_status,
            )
        finally:
            sock.close()

    async def _asgi(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            return await send({"type": "lifespan.shutdown.complete"})
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        method, path = scope["method"], scope["path"].rstrip("/")
        if method == "GET" and path == "/v1/models":
            models = {"object": "list", "data": [_model()]}
            return await _respond(send, 200, "application/json", _json(models))
        if method == "POST" and path == "/v1/chat/completions":
            return await self._complete(scope, body, send)
        self.other_requests.append((method, path))
        error = {"error": {"message": f"no route {method} {path}", "type": "invalid_request"}}
        await _respond(send, 404, "application/json", _json(error))

    async def _complete(self, scope: Message, raw: bytes, send: Send) -> None:
        try:
            body = json.loads(raw)
        except ValueError:
            error = {"error": {"message": "body is not JSON", "type": "invalid_request"}}
            return await _respond(send, 400, "application/json", _json(error))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request = ChatRequest(scope["path"], headers, body)
        index = len(self.requests)
        self.requests.append(request)
        self.finished.append(False)
        answer = answer_for(request.last_user_message)
        model = str(body.get("model") or MODEL)
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            await self._stream(send, answer, model, index, usage=usage)
        else:
            self.finished[index] = True
            await _respond(send, 200, "application/json", _json(_completion(answer, model)))

    async def _stream(
        self, send: Send, answer: str, model: str, index: int, *, usage: bool
    ) -> None:
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        chunk_id = f"chatcmpl-standin-{len(self.requests)}"

        async def event(data: Any) -> None:
            payload = data if isinstance(data, str) else json.dumps(data)
            await send(
                {
                    "type": "http.response.body",
                    "body": f"data: {payload}\n\n".encode(),
                    "more_body": True,
                }
            )

        await event(_chunk(chunk_id, model, {"role": "assistant", "content": ""}))
        for number, token in enumerate(tokens_of(answer)):
            if number == self._hold_after:
                with trio.fail_after(60):  # the test releases it once it saw a streamed token
                    await self._released.wait()
            await trio.sleep(self.token_delay)
            await event(_chunk(chunk_id, model, {"content": token}))
        # Marked before the last events go out: a client can see the end of the response
        # before this task runs again.
        self.finished[index] = True
        await event(_chunk(chunk_id, model, {}, finish="stop"))
        if usage:
            await event({**_chunk(chunk_id, model, {}), "choices": [], "usage": _usage(answer)})
        await event("[DONE]")
        await send({"type": "http.response.body", "body": b""})


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _model() -> dict[str, Any]:
    return {"id": MODEL, "object": "model", "created": 0, "owned_by": "chatd-tests"}


def _chunk(
    chunk_id: str, model: str, delta: dict[str, Any], finish: str | None = None
) -> dict[str, Any]:
    return {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _completion(answer: str, model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-standin",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(answer),
    }


def _usage(answer: str) -> dict[str, int]:
    completion = len(tokens_of(answer))
    return {"prompt_tokens": 1, "completion_tokens": completion, "total_tokens": completion + 1}


async def _respond(send: Send, status: int, kind: str, body: bytes) -> None:
    headers = [(b"content-type", kind.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()
