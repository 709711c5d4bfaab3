"""Files: POST /api/chat/upload (multipart, streamed) and GET /api/chat/files/<id> (signed URL).

A download needs no session token: the URL's signature is the permission (chatd/core/file_urls.py),
so an <img src>, a download link and n8n can use it. The answer can never run as a page: its
type is the sniffed one with nosniff, everything but images is an attachment, and a sandboxing
Content-Security-Policy covers whatever a browser makes of it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any, Literal

import structlog
from quart import Blueprint, Response, request

from chatd.core.file_urls import UnsatisfiableRange, UrlRefused, check_signature, parse_range
from chatd.core.filenames import content_disposition
from chatd.core.ids import parse_id
from chatd.core.query import parse_query
from chatd.core.responses import ErrorBody, UploadAccepted, wire
from chatd.core.wire import FileQuery, UploadForm, iso
from chatd.db.attachments import StoredFile
from chatd.errors import (
    ClientError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RangeNotSatisfiable,
    UnsupportedMediaType,
)
from chatd.files.receive import Uploaded
from chatd.http.auth import request_token_hash
from chatd.http.openapi import Doc, documented
from chatd.http.services import Services

log = structlog.get_logger(__name__)

UPLOAD_PATH = "/api/chat/upload"
MULTIPART_OVERHEAD = 64 * 1024  # the form's boundaries, part headers and sessionId, at most
FILE_CSP = "default-src 'none'; sandbox"


def upload_limit(max_file_bytes: int) -> int:
    """The whole multipart body an upload may have."""
    return max_file_bytes + MULTIPART_OVERHEAD


def files_routes(services: Services) -> Blueprint:
    bp = Blueprint("files", __name__, url_prefix="/api/chat")

    @bp.post("/upload")
    @documented(
        Doc(
            "Upload one file (streamed); send its attachmentId with a message",
            "chat",
            UploadAccepted,
            UploadForm,
            auth="session",
            status=201,
            body_media="multipart/form-data",
            also={413: ErrorBody, 415: ErrorBody, 429: ErrorBody},
        )
    )
    async def upload() -> tuple[dict[str, Any], int]:
        attachments = services.attachments
        try:
            uploaded = await _receive(services)
        except ClientError as exc:
            attachments.refused(exc.code)
            raise
        return wire(accepted(services, uploaded)), 201

    @bp.get("/files/<attachment_id>")
    @documented(
        Doc(
            "A file, by its signed URL (no session token: the signature is the permission)",
            "chat",
            "application/octet-stream",
            query=FileQuery,
            media=("image/jpeg", "image/png", "image/webp", "image/gif", "application/pdf"),
            headers={"Range": "bytes=<start>-<end>: part of the file (206)"},
            also={206: "Partial Content: the Range asked for", 304: "Not Modified"},
        )
    )
    async def download(attachment_id: str) -> Response:
        attachment_id = parse_id(attachment_id, "attachmentId")
        params = parse_query(FileQuery, request.args)
        now = time.time()
        services.attachments.check_ready()
        links = services.attachments.links
        try:
            expires = check_signature(
                links.key,
                attachment_id,
                params.v,
                None if params.exp is None else str(params.exp),
                params.sig,
                now=now,
            )
        except UrlRefused as exc:
            raise Forbidden(exc.message, code=exc.code) from None
        stored = await services.attachments.find(attachment_id)
        if stored is None or (params.v == "thumb" and stored.thumb_type is None):
            raise NotFound("no such file (it may have been deleted)", code="file_not_found")
        return await _serve(services, stored, params.v, max(0, int(expires - now)))

    return bp


async def _receive(services: Services) -> Uploaded:
    boundary = upload_boundary(services)
    token_hash = request_token_hash()

    async def authorize(session_id: str) -> None:
        structlog.contextvars.bind_contextvars(session_id=session_id)
        await services.sessions.authorize(session_id, token_hash)

    return await services.attachments.upload(request.body, boundary, authorize)


def upload_boundary(services: Services) -> bytes:
    """This request's multipart boundary, once the request may be an upload at all (files on,
    multipart, not declared too large); the inbox's uploads check the same."""
    settings = services.settings.attachments
    if not settings.enabled:
        raise NotFound("this chat does not take files", code="attachments_disabled")
    if request.mimetype != "multipart/form-data" or not request.mimetype_params.get("boundary"):
        raise UnsupportedMediaType(
            "send Content-Type: multipart/form-data (with a boundary)",
            code="unsupported_media_type",
        )
    declared = request.content_length
    if declared is not None and declared > upload_limit(settings.max_file_bytes):
        raise PayloadTooLarge(
            f"the file is larger than {settings.max_file_bytes:,} bytes",
            code="file_too_large",
            field="file",
        )
    return request.mimetype_params["boundary"].encode("latin-1", errors="replace")


def accepted(services: Services, uploaded: Uploaded) -> UploadAccepted:
    links, now, done = services.attachments.links, time.time(), uploaded.file
    original = links.sign(uploaded.id, "original", now)
    extra: dict[str, Any] = {}
    if done.width is not None and done.height is not None:
        extra.update(width=done.width, height=done.height)
    if done.thumb_type is not None:
        extra["thumbnailUrl"] = links.sign(uploaded.id, "thumb", now).url
    return UploadAccepted(
        attachmentId=uploaded.id,
        name=done.name,
        type=done.mime,
        size=done.size,
        sha256=done.sha256,
        kind=done.kind,
        url=original.url,
        expiresAt=iso(datetime.fromtimestamp(original.expires, UTC)),
        **extra,
    )


async def _serve(
    services: Services, stored: StoredFile, variant: Literal["original", "thumb"], max_age: int
) -> Response:
    thumb = variant == "thumb"
    size = stored.thumb_size if thumb else stored.size
    mime = (stored.thumb_type or "") if thumb else stored.mime
    etag = f'"{stored.id}.{variant}"'
    headers = {
        "Content-Type": f"{mime}; charset=utf-8" if mime.startswith("text/") else mime,
        "Content-Disposition": content_disposition(
            "inline" if thumb or stored.kind == "image" else "attachment", stored.name
        ),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": FILE_CSP,
        "Cache-Control": f"private, max-age={max_age}",
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    if etag in request.headers.get("If-None-Match", ""):
        return Response(b"", 304, headers)
    try:
        wanted = request.headers.get("Range")
        if_range = request.headers.get("If-Range")
        span = parse_range(wanted, size) if if_range in (None, etag) else None
    except UnsatisfiableRange:
        raise RangeNotSatisfiable(size) from None
    start, stop = span or (0, size)
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    headers["Content-Length"] = str(stop - start)
    pieces = services.attachments.read(stored, variant, start, stop)
    body = await _started(pieces)  # never empty: an empty file is refused at upload
    return Response(body, 206 if span is not None else 200, headers)


async def _started(pieces: AsyncGenerator[bytes]) -> AsyncIterator[bytes]:
    """`pieces`, with its first piece read now: a file gone from the store is a 404, not a
    response that breaks off after its headers."""
    try:
        first = await pieces.__anext__()
    except (FileNotFoundError, StopAsyncIteration):
        await pieces.aclose()
        raise NotFound("no such file (it may have been deleted)", code="file_not_found") from None
    return _chain(first, pieces)


async def _chain(first: bytes, rest: AsyncGenerator[bytes]) -> AsyncIterator[bytes]:
    async with aclosing(rest):  # closed with the response, even when the client hangs up
        yield first
        async for piece in rest:
            yield piece
