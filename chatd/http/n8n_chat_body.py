"""The body of a streaming sendMessage (@n8n/chat's enableStreaming): NDJSON lines made by
core/n8n_chat_stream.ReplyLines from the session's events, until the reply is complete or
n8n_chat.reply_timeout_seconds have passed."""

from __future__ import annotations

from contextlib import ExitStack

import trio

from chatd.core.n8n_chat_stream import ReplyLines
from chatd.realtime.admission import Admission
from chatd.realtime.hub import Closing, SlowConsumer
from chatd.realtime.stream import SessionStream


class ReplyBody:
    """An async iterator quart closes (aclose) however the response ends: not an async
    generator, which would hold its subscription until the garbage collector finalized it."""

    def __init__(
        self,
        stream: SessionStream,
        lines: ReplyLines,
        admission: Admission,
        *,
        wait: float,
        note: str,
    ) -> None:
        self._stream = stream
        self._lines = lines
        self._admission = admission
        self._wait = wait
        self._note = note  # n8n_chat.timeout_reply
        self._deadline: float | None = None
        self._resources = ExitStack()

    def __aiter__(self) -> ReplyBody:
        return self

    async def __anext__(self) -> bytes:
        if self._lines.done:
            await self.aclose()
            raise StopAsyncIteration
        if self._deadline is None:
            self._admission.start()
            self._resources.callback(self._admission.release)
            self._resources.enter_context(self._stream)
            self._deadline = trio.current_time() + self._wait
        while True:
            remaining = self._deadline - trio.current_time()
            if remaining <= 0:
                return self._lines.timed_out(self._note)
            try:
                events = await self._stream.next(max_wait=remaining)
            except (SlowConsumer, Closing):
                # Shutting down, or a buffer's worth of events at once: the reply will be in
                # the history the widget loads next time.
                return self._lines.timed_out(self._note)
            out = b""
            for event in events:
                out += self._lines.on_event(event.data, event.message)
                if self._lines.done:
                    break
            if out:
                return out

    async def aclose(self) -> None:
        self._resources.close()
