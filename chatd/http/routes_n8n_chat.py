"""/api/n8n-chat: n8n's own chat widget (@n8n/chat) talking to chatd as if chatd were n8n's
Chat Trigger. Its messages take chatd's normal path (stored, queued, delivered, retried,
fallback); the request waits for the reply up to n8n_chat.reply_timeout_seconds."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import structlog
import trio
from quart import Blueprint, Response, request

from chatd.core.identity import Identity, prove_identity
from chatd.core.jsonbody import parse_json
from chatd.core.messages import Message, NewMessage
from chatd.core.n8n_chat import (
    N8nChatAnswer,
    N8nChatFormBody,
    N8nChatQuery,
    N8nChatRequest,
    WidgetRequest,
    answers,
    form_fields,
    history_entry,
    parse_body,
    parse_query_args,
    reply_text,
    session_key,
    streaming_text,
)
from chatd.core.n8n_chat_stream import ReplyLines
from chatd.core.responses import wire
from chatd.db.n8n_chat import WidgetSession, WidgetSessionStore
from chatd.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    UnsupportedMediaType,
)
from chatd.http.body import client_ip
from chatd.http.n8n_chat_body import ReplyBody
from chatd.http.openapi import Doc, documented
from chatd.http.routes_files import MULTIPART_OVERHEAD
from chatd.http.services import Services
from chatd.realtime.admission import Admission
from chatd.realtime.hub import Closing, SlowConsumer
from chatd.realtime.stream import SessionStream
from chatd.settings import Settings

PATH = "/api/n8n-chat"
IDENTITY_HEADER = "X-Chatd-Identity"  # an identityToken the shop's back end signed (a JWT)
HISTORY = 100  # the newest messages loadPreviousSession shows
STREAM_MIMETYPE = "application/x-ndjson"
_DESCRIPTION = (
    "Off unless n8n_chat.enabled (404). sendMessage answers {output} when the bot's reply is"
    " stored (the fallback text if n8n failed), or n8n_chat.timeout_reply past"
    " n8n_chat.reply_timeout_seconds; with `Accept: text/plain` (the widget's enableStreaming) it"
    f" answers NDJSON begin/item/end lines instead. {IDENTITY_HEADER}: an identityToken (JWT)."
    " As multipart/form-data (allowFileUploads), each `files` part is stored as an attachment of"
    " the session and sent with the message; a refused file or form (413 form_too_large,"
    " file_too_large; 415 file_type_not_allowed; 400 too_many_files, invalid_form) keeps none."
)


def _doc(
    summary: str,
    *,
    body: type[N8nChatRequest] | None = None,
    query: type[N8nChatQuery] | None = None,
) -> Doc:
    return Doc(
        summary,
        "n8n-chat",
        N8nChatAnswer,
        body=body,
        query=query,
        form=N8nChatFormBody if body is not None else None,
        headers={IDENTITY_HEADER: "an identityToken (HS256 JWT) the shop's back end signed"},
        media=(STREAM_MIMETYPE,),
        description=_DESCRIPTION,
    )


def n8n_chat_routes(services: Services) -> Blueprint:
    bp = Blueprint("n8n_chat", __name__)
    settings = services.settings
    store = WidgetSessionStore(
        services.pool,
        guest_ttl_seconds=settings.chat.guest_session_ttl_seconds,
        user_ttl_seconds=settings.chat.user_session_ttl_seconds,
    )

    @bp.post(PATH)
    @documented(_doc("n8n's chat widget: sendMessage or loadPreviousSession", body=N8nChatRequest))
    async def post() -> Response | dict[str, Any]:
        enabled()
        if request.mimetype == "application/json":
            raw = await _json_bytes(settings.server.max_body_bytes)
            return await answer(parse_body(parse_json(raw), services.limits))
        if request.mimetype == "multipart/form-data":
            return await form()
        raise UnsupportedMediaType(
            f"send application/json or multipart/form-data (got {request.mimetype or 'none'!r})"
        )

    async def form() -> Response | dict[str, Any]:
        """The widget's form (allowFileUploads): its files become attachments of the session,
        sent with the message as POST /api/chat/send sends them; refused, they are deleted."""
        boundary = request.mimetype_params.get("boundary")
        if not boundary:
            raise BadRequest("multipart/form-data needs a boundary", code="invalid_form")
        declared = request.content_length
        if declared is not None and declared > form_limit(settings):
            raise PayloadTooLarge(
                f"the form is larger than {form_limit(settings):,} bytes", code="form_too_large"
            )

        async def open_for_files(fields: Mapping[str, str]) -> str:
            widget = parse_body(form_fields(fields), services.limits, with_files=True)
            session = await open_session(session_key(widget.session_id), widget)
            structlog.contextvars.bind_contextvars(session_id=session.id)
            return session.id

        received = await services.attachments.receive_form(
            request.body,
            boundary.encode("latin-1", errors="replace"),
            open_for_files,
            fields_bytes=settings.server.max_body_bytes,
        )
        files = tuple(f.id for f in received.files)
        try:
            widget = parse_body(
                form_fields(received.fields), services.limits, with_files=bool(files)
            )
            return await answer(widget, files)
        except BaseException:
            await services.attachments.discard_unsent(files)  # the message was not stored
            raise

    @bp.get(PATH)
    @documented(_doc("n8n's chat widget with webhookConfig.method 'GET'", query=N8nChatQuery))
    async def get() -> Response | dict[str, Any]:
        enabled()
        size = len(request.query_string)
        return await answer(parse_query_args(request.args, size, services.limits))

    def enabled() -> None:
        if not services.settings.n8n_chat.enabled:
            raise NotFound(
                "the @n8n/chat endpoint is off; set [n8n_chat] enabled = true",
                code="n8n_chat_disabled",
            )

    async def answer(
        widget: WidgetRequest, files: tuple[str, ...] = ()
    ) -> Response | dict[str, Any]:
        key = session_key(widget.session_id)
        if widget.action == "loadPreviousSession":
            return wire(await history(key))
        assert widget.chat_input is not None  # checked for sendMessage
        session = await open_session(key, widget)
        structlog.contextvars.bind_contextvars(session_id=session.id)
        message = NewMessage(widget.chat_input, "text", widget.metadata, None, files)
        # The wait for the reply is a live connection of the address: admitted before the
        # message is stored, so a refusal (429) stores nothing.
        admission = await services.live_connections.admit(client_ip(settings.server.proxy_trust))
        try:
            stored = (await services.actors.send_message(session.id, key, message)).message
        except BaseException:
            admission.release()
            raise
        structlog.contextvars.bind_contextvars(message_id=stored.id)
        if "text/plain" in request.headers.get("Accept", ""):  # the widget's enableStreaming
            return streamed(session.id, stored, admission)  # started with the response
        admission.start()
        try:
            reply = await wait_for_reply(session.id, stored)
        finally:
            admission.release()
        text = settings.n8n_chat.timeout_reply if reply is None else reply_of(reply)
        return wire(N8nChatAnswer(output=text))

    def streamed(session_id: str, sent: Message, admission: Admission) -> Response:
        body = ReplyBody(
            session_stream(session_id, sent.seq),
            ReplyLines(sent.id),
            admission,
            wait=settings.n8n_chat.reply_timeout_seconds,
            note=settings.n8n_chat.timeout_reply,
        )
        response = Response(body, mimetype=STREAM_MIMETYPE, headers={"X-Accel-Buffering": "no"})
        response.timeout = None  # the body ends itself, at reply_timeout_seconds at the latest
        return response

    def session_stream(session_id: str, after_seq: int) -> SessionStream:
        return SessionStream(
            services.hub,
            services.messages,
            session_id,
            after_seq=after_seq,
            buffer=settings.websocket.send_buffer,
            subscriber_id=services.connection_id(),
        )

    async def history(key: bytes) -> N8nChatAnswer:
        session = await store.find(key)
        if session is None:  # a widget's fresh UUID: nothing to show, nothing created
            return N8nChatAnswer(data=[])
        # The replies streaming now, seen before the read: one stored in between is in the read.
        streaming = [s.view() for s in services.hub.streams.of_session(session.id)]
        messages = await services.messages.recent(session.id, limit=HISTORY)
        data = [history_entry(m.sender_type, reply_of(m)) for m in messages]
        stored = {m.id for m in messages}
        data += [
            history_entry("bot", streaming_text(s["text"]))
            for s in streaming
            if s["messageId"] not in stored
        ]
        return N8nChatAnswer(data=data)

    async def open_session(key: bytes, widget: WidgetRequest) -> WidgetSession:
        identity = prove_identity(
            user_id=None,
            user_hash_hex=None,
            identity_token=request.headers.get(IDENTITY_HEADER) or None,
            secret=settings.identity.secret,
            now=time.time(),
        )
        session = await store.find(key)
        if session is None:
            wait = await services.session_creation.hit(
                client_ip(settings.server.proxy_trust), trio.current_time()
            )
            if wait is not None:
                raise RateLimited("too many new sessions from this address", retry_after=wait)
            session = await store.open(key, identity, widget.metadata)
        check_identity(session, identity)
        return session

    async def wait_for_reply(session_id: str, sent: Message) -> Message | None:
        """The first reply to the shopper's message `sent` stored after it, or None when
        n8n_chat.reply_timeout_seconds pass first."""
        after_seq = sent.seq
        stream = session_stream(session_id, after_seq)
        with stream, trio.move_on_after(settings.n8n_chat.reply_timeout_seconds):
            while True:
                try:
                    events = await stream.next()
                except SlowConsumer:  # a buffer's worth at once: read them instead
                    found = await services.messages.after_seq(
                        session_id, after_seq, limit=settings.websocket.send_buffer
                    )
                    return first_reply(found, sent.id)
                except Closing:
                    return None
                reply = first_reply([e.message for e in events if e.message is not None], sent.id)
                if reply is not None:
                    return reply
        return None

    return bp


async def _json_bytes(limit: int) -> bytes:
    """The JSON body, up to `limit` bytes (server.max_body_bytes): the path's streamed body
    may be as large as a form with files (form_limit), a JSON body may not."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the body is larger than {limit:,} bytes")
    raw = bytearray()
    async for chunk in request.body:
        raw += chunk
        if len(raw) > limit:
            raise PayloadTooLarge(f"the body is larger than {limit:,} bytes")
    return bytes(raw)


def form_limit(settings: Settings) -> int:
    """The whole multipart body of a sendMessage: its fields, and its files when allowed."""
    files = settings.attachments
    room = files.max_files_per_message * files.max_file_bytes if files.enabled else 0
    return settings.server.max_body_bytes + room + MULTIPART_OVERHEAD


def first_reply(messages: list[Message], sent_id: str) -> Message | None:
    """The answer to `sent_id` (core/n8n_chat.answers): not a second tab's shopper message,
    nor the reply to another request's message sent at the same moment."""
    return next((m for m in messages if answers(m, sent_id)), None)


def reply_of(message: Message) -> str:
    return reply_text(message.content, message.metadata, message.attachments)


def check_identity(session: WidgetSession, identity: Identity) -> None:
    """A verified user may only speak in a guest's session or their own (the first message's
    identity stays the session's)."""
    if identity.user_id is not None and identity.user_id != session.user_id:
        raise Unauthorized(
            "this widget session belongs to another user; start a new session",
            code="identity_mismatch",
        )
